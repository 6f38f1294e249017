#!/usr/bin/env python3
"""What pulls weight in a wasm module: its code bytes by crate, from the module's name section.

    python3 scripts/wasm_weight.py target/front/wasm32-unknown-unknown/wasm-release/libero.wasm

Reads the module rustc and wasm-ld wrote (before wasm-bindgen, the split and wasm-opt, which
drops the names): every function body is attributed to the crate its (demangled) name starts
with; `<T as Trait>::f` counts for the crate of `T`. Data segments are one line of their own.
The shares are those of the unoptimised module; wasm-opt shrinks every crate's code alike
within a few per cent. Names are demangled just enough to find the crate (Rust's v0 scheme, or
already demangled paths). No dependency beyond Python.
"""

import re
import sys
from collections import defaultdict
from pathlib import Path


def leb(buf: bytes, pos: int) -> tuple[int, int]:
    """An unsigned LEB128 at `pos`: (value, next position)."""
    value = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def name_bytes(buf: bytes, pos: int) -> tuple[str, int]:
    size, pos = leb(buf, pos)
    return buf[pos : pos + size].decode("utf-8", "replace"), pos + size


def sections(buf: bytes):
    if buf[:4] != b"\0asm":
        raise SystemExit("not a wasm module")
    pos = 8
    while pos < len(buf):
        sid = buf[pos]
        size, pos = leb(buf, pos + 1)
        yield sid, buf[pos : pos + size]
        pos += size


def function_imports(body: bytes) -> int:
    count, pos = leb(body, 0)
    functions = 0
    for _ in range(count):
        _, pos = name_bytes(body, pos)
        _, pos = name_bytes(body, pos)
        kind = body[pos]
        pos += 1
        if kind == 0:  # function: type index
            _, pos = leb(body, pos)
            functions += 1
        elif kind == 1:  # table: reftype, limits
            pos += 1
            flags, pos = leb(body, pos)
            _, pos = leb(body, pos)
            if flags & 1:
                _, pos = leb(body, pos)
        elif kind == 2:  # memory: limits
            flags, pos = leb(body, pos)
            _, pos = leb(body, pos)
            if flags & 1:
                _, pos = leb(body, pos)
        elif kind == 3:  # global: valtype, mutability
            pos += 2
        elif kind == 4:  # tag: attribute, type index
            pos += 1
            _, pos = leb(body, pos)
        else:
            raise SystemExit(f"unknown import kind {kind}")
    return functions


def function_names(body: bytes) -> dict[int, str]:
    name, pos = name_bytes(body, 0)
    if name != "name":
        return {}
    names = {}
    while pos < len(body):
        sub = body[pos]
        size, pos = leb(body, pos + 1)
        end = pos + size
        if sub == 1:
            count, p = leb(body, pos)
            for _ in range(count):
                index, p = leb(body, p)
                names[index], p = name_bytes(body, p)
        pos = end
    return names


APP_CRATE = "6libero"  # the crate root of `libero` in a v0 symbol
APP_GENERICS = "(of the above: other crates' generics instantiated for libero's types)"
V0_CRATE_ROOT = re.compile(r"C(?:s[0-9A-Za-z]*_)?(\d+)")


def crate_of(name: str) -> str:
    if name.startswith("_R"):
        # Rust's v0 mangling: the leftmost crate root (`C<disambiguator><len><name>`) is the crate
        # of the outermost path — of the function, of an impl's own crate, or of `T` in `<T as Trait>`.
        match = V0_CRATE_ROOT.search(name, 2)
        if match:
            start = match.end()
            return name[start : start + int(match.group(1))]
        return "(other)"
    name = name.lstrip("_")
    # `<T as Trait>::f` and `<T>::f`: the crate of T.
    while name.startswith("<"):
        name = name[1:]
        name = name.removeprefix("&").removeprefix("mut ").removeprefix("dyn ").removeprefix("[")
    match = re.match(r"[A-Za-z_][A-Za-z0-9_]*", name)
    if not match:
        return "(other)"
    crate = match.group(0)
    if "::" not in name[: len(crate) + 2]:
        # A symbol without a path: wasm-bindgen glue, libc-like helpers, imports' shims.
        return "(unnamed: " + ("wasm-bindgen glue" if crate.startswith("__wbg") else "runtime helpers") + ")"
    return crate


class NoNames(Exception):
    """The module has no name section to attribute its code by."""


def code_total(by_crate: dict[str, int]) -> int:
    """The bytes of code and data counted (the generics line is a part of them, not more)."""
    return sum(size for crate, size in by_crate.items() if crate != APP_GENERICS)


def weigh(path: Path) -> tuple[int, dict[str, int]]:
    buf = path.read_bytes()
    imported = 0
    bodies: list[int] = []
    names: dict[int, str] = {}
    data = 0
    for sid, body in sections(buf):
        if sid == 2:
            imported = function_imports(body)
        elif sid == 10:
            count, pos = leb(body, 0)
            for _ in range(count):
                size, pos = leb(body, pos)
                bodies.append(size)
                pos += size
        elif sid == 11:
            data = len(body)
        elif sid == 0:
            names.update(function_names(body))
    if not names:
        raise NoNames(f"{path} has no function names (wasm-opt strips them): weigh rustc's own output")
    by_crate: dict[str, int] = defaultdict(int)
    for i, size in enumerate(bodies):
        name = names.get(imported + i, "")
        if name.startswith("__wbindgen_describe"):
            continue  # read and dropped by wasm-bindgen: never in the module a browser loads
        by_crate[crate_of(name)] += size
        if APP_CRATE in name and crate_of(name) != "libero":
            by_crate[APP_GENERICS] += size
    by_crate["(data segments: strings, tables)"] = data
    return len(buf), dict(by_crate)


def main() -> None:
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    try:
        total, by_crate = weigh(Path(sys.argv[1]))
    except NoNames as err:
        raise SystemExit(str(err))
    counted = code_total(by_crate)
    print(f"{sys.argv[1]}: {total:,} bytes, {counted:,} in code and data")
    for crate, size in top(by_crate, 25):
        print(f"{size / counted:6.1%} {size:>9,}  {crate}")


def top(by_crate: dict[str, int], n: int) -> list[tuple[str, int]]:
    """The `n` heaviest crates, then the share of the app's own types in the generic crates."""
    ranked = sorted(((c, s) for c, s in by_crate.items() if c != APP_GENERICS), key=lambda kv: -kv[1])[:n]
    return ranked + ([(APP_GENERICS, by_crate[APP_GENERICS])] if APP_GENERICS in by_crate else [])


if __name__ == "__main__":
    main()
