#!/usr/bin/env python3
"""Instructions per request, counted by valgrind's callgrind rather than timed: the same count on a
busy machine or a quiet one, so two stacks compare without wrk's run-to-run drift. For Libero's
signed-in server-function call (`/api/session_info` with the cookie) and its 401 path, and stock
tower-sessions' guarded page and its floor, on one database; then what each guard's instructions
are spent on (inclusive counts of the functions named in PARTS).

Only user space is counted: the kernel's share (loopback TCP, the scheduler) and the CPU's speed
per instruction are not, which is what `make bench`'s CPU table and `perf` measure. valgrind runs
SHA-256 in software (it hides the CPU's SHA extensions), so its compression rounds are counted and
shown apart.

Needs what `make bench` builds (target/bench: the release bench build, fake-commerce7, the stock
peer); builds nothing. Settings: CG_DB (postgres or sqlite, default postgres), CG_REQUESTS
(default 2000), BENCH_POSTGRES_URL as for `make bench`. callgrind's files stay in a temporary
folder, named first, for callgrind_annotate.

    python3 scripts/instructions.py
"""

from __future__ import annotations

import http.client
import os
import re
import subprocess
import tempfile
from pathlib import Path

from bench import TARGET, Server, database_url, install_and_sign_in, start_fake, start_libero, start_peer

KIND = os.environ.get("CG_DB", "postgres")
REQUESTS = int(os.environ.get("CG_REQUESTS", "2000"))
PEER = TARGET / "bench-peers" / "ts-stock" / "target" / "release" / "ts-stock"
# SHA-256's compression function, as the two stacks' versions of the sha2 crate name it.
SHA = re.compile(r"sha2::sha256::(\w+::)?compress")

# (label, how the function's name begins in callgrind_annotate's output)
PARTS = {
    "libero": [
        ("the session middleware (all it calls)", "<axum::middleware::from_fn::FromFn<libero::server::sessions::cookie::session_layer,"),
        ("  the cookie's signature", "<libero_sessions::cookie::CookieSigner>::verify"),
        ("  the guard (all it calls)", "<axum::middleware::from_fn::FromFn<libero::server::sessions::guard::session_guard,"),
        ("    the session row's read (pool, query, decode)", "<tokio::time::timeout::Timeout<libero_sessions::db::within<"),
        ("    the token's hash", "libero_sessions::hash_token"),
        ("    the server function: leptos_axum's dispatch and the function",
         "<<axum::routing::Router<libero::server::state::AppState> as leptos_axum::LeptosRoutes"),
        ("      of which the function", "<libero::api::session::GetSessionInfo as server_fn::ServerFn>::run_on_server"),
    ],
    "stock": [
        ("the session layer (all it calls)", "<tracing::instrument::Instrumented<<tower_sessions::service::SessionManager<"),
        ("  the cookie's signature", "<tower_sessions::service::SignedCookie as tower_sessions::service::CookieController>::get"),
        ("  the session's read (pool, query, decode)", "<tower_sessions_sqlx_store::"),
    ],
}
# On SQLite, sqlx runs each connection's statements on a thread of its own: the read's work there
# is counted outside the request's calls.
SQLITE_WORKER = ("the read's work on sqlx's SQLite worker thread",
                 "<std::thread::lifecycle::spawn_unchecked<<sqlx_sqlite::connection::worker::ConnectionWorker>")


def hammer(port: int, method: str, path: str, headers: dict, count: int, expected: int) -> None:
    """`count` requests on one kept-alive connection, each answered `expected`."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        for _ in range(count):
            connection.request(method, path, body=b"" if method == "POST" else None, headers=headers)
            response = connection.getresponse()
            response.read()
            if response.status != expected:
                raise SystemExit(f"{method} {path} answered {response.status}, not {expected}")
    finally:
        connection.close()


def measure(server: Server, label: str, method: str, path: str, headers: dict, expected: int, out: Path) -> Path:
    """Counts `REQUESTS` requests alone (warmed up first): zeroes the counters, then dumps them."""
    hammer(server.port, method, path, headers, 100, expected)
    subprocess.run(["callgrind_control", "--zero", str(server.proc.pid)], check=True, capture_output=True)
    hammer(server.port, method, path, headers, REQUESTS, expected)
    subprocess.run(["callgrind_control", f"--dump={label}", str(server.proc.pid)], check=True, capture_output=True)
    dumps = [p for p in out.iterdir() if f"Trigger: dump {label}\n" in head(p)]
    assert len(dumps) == 1, (label, dumps)
    return dumps[0]


def head(path: Path) -> str:
    with path.open(errors="replace") as file:
        return file.read(4096)


def costs(dump: Path) -> tuple[int, dict[str, int], dict[str, int]]:
    """Total instructions, and each function's inclusive and self counts."""
    def read(inclusive: bool) -> dict[str, int]:
        text = subprocess.run(["callgrind_annotate", "--threshold=100", f"--inclusive={'yes' if inclusive else 'no'}",
                               str(dump)], check=True, capture_output=True, text=True).stdout
        found: dict[str, int] = {}
        for line in text.splitlines():
            match = re.match(r"\s*([\d,]+) \([\s\d.]+%\)\s+(.*)", line)
            # A name ending in `'2` is a recursive entry of a function already counted.
            if match and not re.search(r"'\d+$", match.group(2).split(" [")[0]):
                found[match.group(2)] = max(found.get(match.group(2), 0), int(match.group(1).replace(",", "")))
        return found
    inclusive = read(True)
    return inclusive.pop("PROGRAM TOTALS", 0), inclusive, read(False)


def named(functions: dict[str, int], start: str) -> float:
    """The largest count of a function whose name begins with `start` (after its file, `???:`); a
    name that is no longer there (a renamed function, a new version of a crate) stops the script
    rather than print a zero."""
    counts = [count for name, count in functions.items() if name.split(":", 1)[-1].startswith(start)]
    if not counts:
        raise SystemExit(f"no function named {start}… in this profile: update PARTS")
    return max(counts)


def sha_rounds(own: dict[str, int]) -> float:
    """The instructions spent in SHA-256's compression function itself (none on a floor)."""
    return sum(count for name, count in own.items() if SHA.match(name.split(":", 1)[-1]))


def main() -> None:
    scratch = Path(tempfile.mkdtemp())
    out = scratch / "callgrind"
    out.mkdir()
    print(f"callgrind's files: {out}", flush=True)
    def valgrind(who: str) -> list[str]:
        return ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}/{who}.%p"]

    servers: list[Server] = []
    dumps: dict[str, Path] = {}
    try:
        fake = start_fake("cg-fake-commerce7", 0, scratch)
        servers.append(fake)
        app = start_libero("cg-libero", database_url(KIND, "cg_libero", scratch), fake, None, scratch,
                           prefix=valgrind("libero"))
        servers.append(app)
        cookie, _ = install_and_sign_in(f"http://127.0.0.1:{app.port}")
        same_origin = {"Sec-Fetch-Site": "same-origin"}
        dumps["libero 401"] = measure(app, "l401", "POST", "/api/session_info", same_origin, 401, out)
        dumps["libero signed in"] = measure(app, "lcookie", "POST", "/api/session_info",
                                            same_origin | {"Cookie": cookie}, 200, out)
        app.stop()

        peer, cookie = start_peer("cg-stock", [*valgrind("stock"), str(PEER)],
                                  database_url(KIND, "cg_stock", scratch), scratch)
        servers.append(peer)
        dumps["stock floor"] = measure(peer, "sfloor", "GET", "/", {}, 200, out)
        dumps["stock signed in"] = measure(peer, "sguarded", "GET", "/app", {"Cookie": cookie}, 200, out)
    finally:
        for server in reversed(servers):
            server.stop()

    read = {name: costs(dump) for name, dump in dumps.items()}
    per = {name: (total / REQUESTS, {k: v / REQUESTS for k, v in inc.items()}, {k: v / REQUESTS for k, v in own.items()})
           for name, (total, inc, own) in read.items()}
    print(f"\n{KIND}: instructions per request (callgrind, {REQUESTS} requests each, one connection)\n")
    print("| | Libero | stock tower-sessions |\n|---|---|---|")
    for row, l_name, s_name in [("signed in", "libero signed in", "stock signed in"),
                                ("its floor (Libero: the 401 path; stock: `/`)", "libero 401", "stock floor")]:
        print(f"| {row} | {per[l_name][0]:,.0f} | {per[s_name][0]:,.0f} |")
    guard = {who: per[f"{who} signed in"][0] - per[floor][0] for who, floor in (("libero", "libero 401"),
                                                                                 ("stock", "stock floor"))}
    sha = {who: sha_rounds(per[f"{who} signed in"][2]) - sha_rounds(per[floor][2])
           for who, floor in (("libero", "libero 401"), ("stock", "stock floor"))}
    if not all(sha.values()):
        raise SystemExit(f"no SHA-256 rounds found ({sha}): update SHA for this version of the sha2 crate")
    print(f"| the guard (signed in − floor) | {guard['libero']:,.0f} | {guard['stock']:,.0f} |")
    print(f"| of which SHA-256 rounds (software under valgrind) | {sha['libero']:,.0f} | {sha['stock']:,.0f} |")
    print(f"| the guard without them | {guard['libero'] - sha['libero']:,.0f} | {guard['stock'] - sha['stock']:,.0f} |")
    print(f"\nratio Libero / stock: {guard['libero'] / guard['stock']:.2f}, "
          f"without the SHA-256 rounds {(guard['libero'] - sha['libero']) / (guard['stock'] - sha['stock']):.2f}")
    for who in ("libero", "stock"):
        print(f"\n{who}, signed in: inclusive instructions per request")
        for label, needle in PARTS[who] + ([SQLITE_WORKER] if KIND == "sqlite" else []):
            print(f"  {named(per[f'{who} signed in'][1], needle):9,.0f}  {label}")


if __name__ == "__main__":
    main()
