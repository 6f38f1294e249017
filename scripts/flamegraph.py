#!/usr/bin/env python3
"""A flame graph (SVG) from `perf script` output, with no tool beyond Python.

    perf record -F 999 -g --call-graph dwarf -p <libero pid> -o perf.data   # while wrk runs
    perf script -i perf.data -F comm,tid,ip,sym --no-inline > perf.txt
    python3 scripts/flamegraph.py perf.txt "POST /api/session_info, SQLite" > bench/flame.svg

Frames are simplified (closures, trait-impl brackets, generic arguments dropped) so that the same
function merges; the width of a box is its share of the samples, children above parents.
"""

import html
import re
import sys
from collections import defaultdict


def strip_generics(s: str) -> str:
    out, depth = [], 0
    for ch in s:
        if ch == "<":
            depth += 1
        elif ch == ">":
            depth = max(depth - 1, 0)
        elif depth == 0:
            out.append(ch)
    return "".join(out)


def simplify(symbol: str) -> str:
    s = re.sub(r"::\{closure#\d+\}", "", symbol)
    s = re.sub(r"::\{shim:[^}]*\}", "", s)
    if s.startswith("<"):
        # `<Type<..> as Trait<..>>::method` → `Type::method`
        depth = 0
        for i, ch in enumerate(s):
            depth += ch == "<"
            depth -= ch == ">"
            if depth == 0:
                inner, rest = s[1:i], s[i + 1 :]
                level, cut = 0, len(inner)
                for j, c in enumerate(inner):
                    level += c == "<"
                    level -= c == ">"
                    if level == 0 and inner.startswith(" as ", j):
                        cut = j
                        break
                s = inner[:cut] + rest
                break
    s = strip_generics(s).replace("&", "").replace("mut ", "").strip()
    return s or symbol[:60]


def read_stacks(path: str) -> dict:
    counts: dict = defaultdict(int)
    frames: list = []
    in_sample = False
    with open(path, errors="replace") as f:
        for line in f:
            if not line.strip():
                if in_sample and frames:
                    counts[tuple(reversed(frames))] += 1
                frames, in_sample = [], False
                continue
            if not line[0].isspace():
                in_sample, frames = True, []
                continue
            parts = line.strip().split(" ", 1)
            if len(parts) == 2 and parts[1] != "[unknown]":
                frames.append(simplify(parts[1]))
    if in_sample and frames:
        counts[tuple(reversed(frames))] += 1
    return counts


def build_tree(counts: dict) -> dict:
    root = {"name": "all", "value": 0, "children": {}}
    for stack, n in counts.items():
        root["value"] += n
        node = root
        for frame in stack:
            child = node["children"].setdefault(frame, {"name": frame, "value": 0, "children": {}})
            child["value"] += n
            node = child
    return root


def colour(name: str) -> str:
    h = sum(map(ord, name)) % 60
    if name.startswith(("libero", "<libero")):
        return f"rgb(230,{90 + h},60)"
    if "sqlx" in name or "sqlite" in name:
        return f"rgb(80,{140 + h},220)"
    return f"rgb(240,{150 + h},{60 + h // 2})"


def render(root: dict, title: str, width: int = 1600, row: int = 17) -> str:
    total = root["value"]
    boxes = []

    def walk(node: dict, x: float, depth: int) -> int:
        w = node["value"] / total * width
        if w < 0.5:
            return depth
        boxes.append((x, depth, w, node))
        deepest, cx = depth, x
        for child in sorted(node["children"].values(), key=lambda c: c["name"]):
            deepest = max(deepest, walk(child, cx, depth + 1))
            cx += child["value"] / total * width
        return deepest

    depth = walk(root, 0, 0)
    height = (depth + 3) * row
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="monospace" font-size="11">',
           f'<text x="8" y="14" font-size="14">{html.escape(title)} — {total} samples</text>']
    for x, d, w, node in boxes:
        y = height - (d + 1) * row
        pct = 100 * node["value"] / total
        label = node["name"]
        chars = int(w / 7)
        text = label if len(label) <= chars else (label[: max(chars - 2, 0)] + "..") if chars > 3 else ""
        out.append(f'<g><title>{html.escape(label)} ({pct:.1f}%)</title>'
                   f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{row - 1}" fill="{colour(label)}"/>'
                   f'<text x="{x + 3:.1f}" y="{y + row - 5}">{html.escape(text)}</text></g>')
    out.append("</svg>")
    return "\n".join(out)


if __name__ == "__main__":
    print(render(build_tree(read_stacks(sys.argv[1])), sys.argv[2] if len(sys.argv) > 2 else sys.argv[1]))
