#!/usr/bin/env python3
"""What PostgreSQL does for one request: statements (transactions), index scans and tuples per
request of the guarded dashboard (/app), its unguarded bench twin (/__bench/app) and the guarded
server function (/api/session_info), read from PostgreSQL's own statistics around N requests.

It answers "how many round trips does the guard add?" with a count rather than a timing: the
CPU table of `make bench` splits the guard's microseconds between the server and PostgreSQL, and
this says how many statements those microseconds pay for.

Needs the release bench build that `make bench` leaves in target/bench (it builds nothing) and the
local PostgreSQL (BENCH_POSTGRES_URL, as for `make bench`); it creates and drops its own database.

    python3 scripts/pg_statements.py [N requests per target, default 2000]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import bench
from bench import psql, request

# PostgreSQL's backends send their counters to the statistics at most once a second while busy
# and after up to 10 s when idle (PGSTAT_IDLE_INTERVAL): wait that out before each reading.
SETTLE_S = 11
STATS = """SELECT d.xact_commit + d.xact_rollback, d.tup_returned, d.tup_fetched,
                  (SELECT coalesce(sum(idx_scan), 0) FROM pg_stat_user_tables),
                  (SELECT coalesce(sum(seq_scan), 0) FROM pg_stat_user_tables)
             FROM pg_stat_database d WHERE d.datname = current_database()"""
COLUMNS = ["statements", "tuples returned", "tuples fetched", "index scans", "seq scans"]


def reading(url: str) -> list[int]:
    time.sleep(SETTLE_S)
    return [int(v) for v in psql(url, STATS).split("|")]


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    if not bench.postgres_available():
        raise SystemExit(f"PostgreSQL is not reachable at {bench.PG_ADMIN}")
    if not (bench.BUILD / "release" / "libero").exists():
        raise SystemExit("no release bench build: run `make bench` first")
    bench.BUILD.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="libero-pg-statements-"))
    name = "libero_pg_statements"
    url = bench.fresh_postgres(name)
    fast = bench.start_fake("pg-statements-fake-commerce7", 0, scratch)
    app = None
    try:
        app = bench.start_libero("pg-statements-libero", url, fast, None, scratch)
        base = f"http://127.0.0.1:{app.port}"
        cookie, _ = bench.install_and_sign_in(base)
        # The readings' own queries, to take off each interval.
        before = reading(url)
        idle = [b - a for a, b in zip(before, reading(url))]
        targets = [
            ("/__bench/app (dashboard without the guard)", "GET", "/__bench/app", {}),
            ("/app (dashboard, guarded)", "GET", "/app", {}),
            ("/api/session_info (guarded server fn)", "POST", "/api/session_info", {"Sec-Fetch-Site": "same-origin"}),
        ]
        print(f"per request, over {n} requests each (after the readings' own {idle[0]} statements):")
        print(f"| target | {' | '.join(COLUMNS)} |\n|---|" + "---|" * len(COLUMNS))
        for label, method, path, headers in targets:
            start = reading(url)
            for _ in range(n):
                status, _, _ = request(method, base + path, {"Cookie": cookie} | headers)
                if status != 200:
                    raise SystemExit(f"{path} answered {status}")
            end = reading(url)
            per = [(b - a - i) / n for a, b, i in zip(start, end, idle)]
            print(f"| {label} | " + " | ".join(f"{v:.2f}" for v in per) + " |")
    finally:
        if app:
            app.stop()
        fast.stop()
        psql(bench.PG_ADMIN, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
