#!/usr/bin/env python3
"""The guard's cost over its 401 path beside stock tower-sessions', in a few minutes rather than a
whole `make bench`: for one or more Libero binaries (to compare two builds) and the stock peer, on
one database, `/api/session_info` with the cookie and without a credential, and the peer's guarded
page and its floor, interleaved in each round so that the machine's drift touches them alike.

Prints, per Libero binary: the guard's cost per round (µs per request, wall time at
AB_CONNECTIONS), the median of its ratios to stock's cost round by round (the paired ratio of
`make bench`), the cookie call's req/s and p99, and the CPU per request the server and PostgreSQL
spent over the 401 path (stock: over its floor).

Needs what `make bench` builds (target/bench: the release bench build, fake-commerce7, the stock
peer); builds nothing. Settings: AB_DB (postgres or sqlite, default postgres), AB_ROUNDS
(default 5), AB_CONNECTIONS (default 16), and BENCH_POSTGRES_URL and BENCH_DURATION as for
`make bench`.

    python3 scripts/guard_ab.py [path/to/libero ...]   (default target/bench/release/libero)
"""

from __future__ import annotations

import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from bench import BUILD, TARGET, Server, database_url, install_and_sign_in, start_fake, start_libero, start_peer, wrk

KIND = os.environ.get("AB_DB", "postgres")
ROUNDS = int(os.environ.get("AB_ROUNDS", "5"))
CONNECTIONS = int(os.environ.get("AB_CONNECTIONS", "16"))
PEER = TARGET / "bench-peers" / "ts-stock" / "target" / "release" / "ts-stock"


def median(values) -> float:
    return statistics.median(list(values))


def main() -> None:
    binaries = [Path(p).resolve() for p in sys.argv[1:]] or [BUILD / "release" / "libero"]
    scratch = Path(tempfile.mkdtemp())
    servers: list[Server] = []
    try:
        fake = start_fake("ab-fake-commerce7", 0, scratch)
        servers.append(fake)
        targets = []  # (name, server, [(label, url, method, headers)])
        same_origin = {"Sec-Fetch-Site": "same-origin"}
        for i, binary in enumerate(binaries):
            # A binary is started from its own folder's hash.txt (the front end's hashed names).
            if not (binary.parent / "hash.txt").exists():
                shutil.copy(BUILD / "release" / "hash.txt", binary.parent / "hash.txt")
            app = start_libero(f"ab-libero-{i}", database_url(KIND, f"ab_libero_{i}", scratch), fake, None, scratch,
                               binary)
            servers.append(app)
            base = f"http://127.0.0.1:{app.port}"
            cookie, _ = install_and_sign_in(base)
            targets.append((str(binary), app, [("401", f"{base}/api/session_info", "POST", same_origin),
                                               ("guarded", f"{base}/api/session_info", "POST",
                                                same_origin | {"Cookie": cookie})]))
        peer, cookie = start_peer("ab-stock", [str(PEER)], database_url(KIND, "ab_stock", scratch), scratch)
        servers.append(peer)
        peer_base = f"http://127.0.0.1:{peer.port}"
        targets.append(("stock tower-sessions", peer, [("401", f"{peer_base}/", "GET", {}),
                                                       ("guarded", f"{peer_base}/app", "GET", {"Cookie": cookie})]))

        runs: dict = {}
        for round_ in range(1, ROUNDS + 1):
            for name, server, cells in targets:
                for label, url, method, headers in cells:
                    runs.setdefault((name, label), []).append(wrk(url, CONNECTIONS, method, headers,
                                                                  server.proc.pid))
            print(f"round {round_}/{ROUNDS}", flush=True)

        def cost(name: str) -> list[float]:
            return [1e6 / g["rps"] - 1e6 / f["rps"] for g, f in zip(runs[(name, "guarded")], runs[(name, "401")])]

        def cpu(name: str, field: str) -> float:
            return median(r["cpu"][field] for r in runs[(name, "guarded")]) - median(
                r["cpu"][field] for r in runs[(name, "401")])

        stock = cost("stock tower-sessions")
        print(f"\n{KIND}, {CONNECTIONS} connections, {ROUNDS} rounds (floor: Libero's 401 path, stock's `/`)")
        for name, _, _ in targets:
            own = cost(name)
            guarded = runs[(name, "guarded")]
            print(f"{name}\n  guard cost µs/request: {', '.join(f'{c:.1f}' for c in own)} (median {median(own):.1f})"
                  f"; paired ratio to stock {median(a / b for a, b in zip(own, stock)):.2f}\n"
                  f"  guarded req/s {median(r['rps'] for r in guarded):,.0f}, p99 {median(r['p99'] for r in guarded):.2f}"
                  f" ms; CPU µs/request over the floor: server {cpu(name, 'app_us'):.1f}, database {cpu(name, 'db_us'):.1f}")
    finally:
        for server in reversed(servers):
            server.stop()


if __name__ == "__main__":
    main()
