#!/usr/bin/env python3
"""`make bench`: Libero's guard against its own floors and the stacks people pick instead.

Runs on loopback, on SQLite and PostgreSQL, with wrk as the load generator, and prints the report
(one table per database and for the peers, the ratios, the CPU split, the browser timings) and
writes it to bench/results.md (machine, date, commit). Everything is measured in one run so the
ratios mean something; absolute numbers depend on the machine.

Rows (at 1, 16 and 64 connections: req/s, p50, p99):
  floors      bare axum hello in the same binary (/__bench/hello), /healthz
  guarded     POST /api/session_info with the cookie, with the tab token, and its 401 path
  pages       GET /app (guarded) against /__bench/app (the same page without the guard)
  sign-in     the fast path (GET /app?tenantId&account with the session's cookie)
  replaced    every request verified with Commerce7 (/__bench/reauth) at 0 and 200 ms
  peers       ../shared/bench-peers when present: stock tower-sessions (SQLite, PostgreSQL),
              express + express-session + connect-pg-simple (PostgreSQL)
and: server RSS, database writes per session, lookup p50 with 10^3/10^5/10^6 rows, wasm size and
what pulls weight in it (scripts/wasm_weight.py), the CPU time per request of the server, of
PostgreSQL and of wrk (from /proc, around every run: where the guard's microseconds go), and
the browser timings: Chromium opening Libero from the Commerce7 admin simulator over a throttled
link (end2end/bench/open-timing.spec.ts), click to dashboard visible and to interactive, cold and
warm cache.

Every cell is the median of BENCH_ROUNDS interleaved runs (see rounds()).

The bench build (cargo feature `bench`) goes to its own target directory, target/bench (binaries
in target/bench/release, the site in target/bench/site), never to target/release, which is what
operators deploy; a binary with the bench routes also refuses to start under LEPTOS_ENV=PROD.

Settings: BENCH_DURATION (seconds per run, default 3), BENCH_ROUNDS (default 3),
BENCH_CONNECTIONS (default 1,16,64),
BENCH_POSTGRES_URL (admin URL, default postgres://postgres@127.0.0.1:5432/postgres; the server's
Unix socket: postgres:///postgres?host=/var/run/postgresql&user=postgres),
BENCH_ROWS (default 1000,100000,1000000), BENCH_SKIP_BUILD=1 (reuse the last build),
BENCH_PEERS (default ../shared/bench-peers), BENCH_BROWSER_RUNS (opens per cache state, default 5;
0 leaves the browser timings out), BENCH_C7_LATENCY_MS (the simulated Commerce7's answer time in
the browser timings, default 250), BENCH_ONLY=browser (the build and the browser timings only).

Writes bench/results.md (the load runs) and bench/open-timing.md (the browser timings).
"""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import http.client
import json
import os
import platform
import re
import resource
import shutil
import socket
import statistics
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = ROOT / "target"
# The bench build's own cargo target directory: a binary with the `bench` feature (its unguarded
# /__bench/* routes) never lands in target/release, the path operators deploy from (and it
# refuses to start under LEPTOS_ENV=PROD anyway). Its release binaries are BUILD / "release", its
# front end BUILD / "front", its site SITE.
BUILD = TARGET / "bench"
SECRET = "bench-secret-0123456789abcdef0123456789abcdef"
CALLBACK_USER, CALLBACK_PASSWORD = "bench-callbacks", "bench-callback-password"
METRICS_TOKEN = "bench-metrics-token"
TENANT, ACCOUNT = "demo-winery", "demo-owner-token"

DURATION = int(os.environ.get("BENCH_DURATION", "3"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
CONNECTIONS = [int(c) for c in os.environ.get("BENCH_CONNECTIONS", "1,16,64").split(",")]
PG_ADMIN = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")
ROW_COUNTS = [int(n) for n in os.environ.get("BENCH_ROWS", "1000,100000,1000000").split(",")]
PEERS = Path(os.environ.get("BENCH_PEERS", ROOT.parent / "shared" / "bench-peers"))
SITE = BUILD / "site"
BROWSER_RUNS = int(os.environ.get("BENCH_BROWSER_RUNS", "5"))
C7_LATENCY_MS = int(os.environ.get("BENCH_C7_LATENCY_MS", "250"))
ONLY = os.environ.get("BENCH_ONLY", "")


def say(message: str) -> None:
    print(f"\033[1;34m[bench]\033[0m {message}", flush=True)


def run(cmd: list[str], **kw) -> None:
    say(" ".join(cmd))
    subprocess.run(cmd, check=True, **kw)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- processes ----------------------------------------------------------------------------------


class Server:
    """A child server on a free port, its output in a log file, stopped on exit."""

    def __init__(self, name: str, cmd: list[str], env: dict[str, str], port: int, health: str, cwd: Path):
        self.name, self.port = name, port
        self.log = open(BUILD / f"{name}.log", "w")
        self.proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"{name} exited at start-up; see target/bench/{name}.log")
            try:
                if request("GET", f"http://127.0.0.1:{port}{health}")[0] < 500:
                    return
            except OSError:
                time.sleep(0.2)
        raise SystemExit(f"{name} did not answer on port {port} within 60 s")

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()


def request(method: str, url: str, headers: dict[str, str] | None = None, body: str = "") -> tuple[int, dict, str]:
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    conn.request(method, path, body=body or None, headers=headers or {})
    response = conn.getresponse()
    data = response.read().decode("utf-8", "replace")
    result = (response.status, {k.lower(): v for k, v in response.getheaders()}, data)
    set_cookies = [v for k, v in response.getheaders() if k.lower() == "set-cookie"]
    result[1]["set-cookie-all"] = set_cookies
    conn.close()
    return result


# --- wrk ----------------------------------------------------------------------------------------


CLOCK_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads) so far, in seconds."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICK


def postgres_cpu() -> dict[int, float]:
    """The CPU time of every PostgreSQL process on the machine (the bench's own load is all of
    their work while it runs), by pid."""
    out = {}
    for comm in Path("/proc").glob("[0-9]*/comm"):
        try:
            if comm.read_text().strip() == "postgres":
                pid = int(comm.parent.name)
                out[pid] = cpu_seconds(pid)
        except (FileNotFoundError, ProcessLookupError):
            pass
    return out


def wrk(url: str, connections: int, method: str = "GET", headers: dict[str, str] | None = None,
        server_pid: int | None = None) -> dict:
    """One wrk run: req/s, p50 and p99 in ms, and how many answers were not 2xx/3xx; with
    `server_pid`, also the CPU time per request the server, PostgreSQL and wrk itself spent (µs)."""
    script = BUILD / "request.lua"
    lines = [f'wrk.method = "{method}"']
    for k, v in (headers or {}).items():
        lines.append(f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}")
    if method == "POST":
        lines.append('wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"')
        lines.append('wrk.body = ""')
    script.write_text("\n".join(lines) + "\n")
    threads = min(2, connections)
    app_before, db_before = cpu_seconds(server_pid) if server_pid else 0.0, postgres_cpu()
    wrk_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{DURATION}s", "--latency", "-s", str(script), url],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    wrk_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    app_after, db_after = cpu_seconds(server_pid) if server_pid else 0.0, postgres_cpu()

    def millis(text: str) -> float:
        value, unit = re.match(r"([\d.]+)(us|ms|s)", text).groups()
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = millis(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))
    p99 = millis(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    total = int(re.search(r"(\d+) requests in", out).group(1))
    per_request = lambda seconds: seconds * 1e6 / max(total, 1)
    cpu = {
        "app_us": per_request(app_after - app_before),
        "db_us": per_request(sum(t - db_before.get(pid, 0.0) for pid, t in db_after.items())),
        "wrk_us": per_request(wrk_after.ru_utime + wrk_after.ru_stime - wrk_before.ru_utime - wrk_before.ru_stime),
    } if server_pid else None
    return {"rps": rps, "p50": p50, "p99": p99, "non2xx": int(bad.group(1)) if bad else 0,
            "socket_errors": errors.group(1) if errors else "", "cpu": cpu}


# --- databases ----------------------------------------------------------------------------------


def psql(url: str, sql: str) -> str:
    return subprocess.run(["psql", "-X", "-q", "-t", "-A", url, "-c", sql], check=True, capture_output=True,
                          text=True).stdout.strip()


def postgres_available() -> bool:
    if not shutil.which("psql"):
        return False
    try:
        psql(PG_ADMIN, "SELECT 1")
        return True
    except subprocess.CalledProcessError:
        return False


def pg_transport() -> str:
    """How BENCH_POSTGRES_URL reaches the server: its Unix socket or TCP."""
    parts = urllib.parse.urlsplit(PG_ADMIN)
    host = urllib.parse.parse_qs(parts.query).get("host", [urllib.parse.unquote(parts.hostname or "")])[0]
    return f"over its Unix socket in `{host}`" if host.startswith("/") else "over loopback TCP"


def fresh_postgres(name: str) -> str:
    """A new database, and its URL without TLS: every stack then talks to PostgreSQL over the
    same plain connection, loopback TCP or the socket BENCH_POSTGRES_URL names (the stock peer's
    sqlx is built without TLS and express's `pg` does not ask for it; Libero's would otherwise
    negotiate TLS and pay for it alone)."""
    psql(PG_ADMIN, f'DROP DATABASE IF EXISTS "{name}"')
    psql(PG_ADMIN, f'CREATE DATABASE "{name}"')
    parts = urllib.parse.urlsplit(PG_ADMIN)
    query = "&".join(filter(None, [parts.query, "sslmode=disable"]))
    # `postgres:///db?host=/var/run/postgresql` (a Unix socket): urlunsplit would drop the `//`.
    return f"{parts.scheme}://{parts.netloc}/{name}?{query}"


def database_url(kind: str, name: str, scratch: Path) -> str:
    """A fresh database `name` of `kind` (`postgres` or `sqlite`, a file in `scratch`)."""
    return fresh_postgres(name) if kind == "postgres" else f"sqlite://{scratch}/{name}.db?mode=rwc"


def insert_rows(kind: str, url: str, count: int) -> None:
    """Fills app_sessions with `count` extra live rows of the bench tenant (not ours)."""
    future = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=8)).isoformat(timespec="microseconds")
    now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="microseconds")
    if kind == "sqlite":
        db = sqlite3.connect(url.removeprefix("sqlite://").split("?")[0])
        client = db.execute("SELECT id FROM clients WHERE tenant_id = ?", (TENANT,)).fetchone()[0]
        db.execute("DELETE FROM app_sessions WHERE user_id = 'bench-filler'")
        db.execute(
            """WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
               INSERT INTO app_sessions (id, client_id, tenant_id, user_id, theme, data, last_activity_at,
                                         expires_at, created_at, updated_at, install_generation)
               SELECT printf('%064x', i), ?, ?, 'bench-filler', 'light', '{}', ?, ?, ?, ?, 1 FROM n""",
            (count, client, TENANT, now, future, now, now),
        )
        db.commit()
        db.execute("ANALYZE")
        db.close()
    else:
        psql(url, "DELETE FROM app_sessions WHERE user_id = 'bench-filler'")
        psql(url, f"""INSERT INTO app_sessions (id, client_id, tenant_id, user_id, theme, data, last_activity_at,
                                                expires_at, created_at, updated_at, install_generation)
                      SELECT lpad(to_hex(i), 64, '0'), c.id, c.tenant_id, 'bench-filler', 'light', '{{}}', now(),
                             now() + interval '8 hours', now(), now(), 1
                        FROM generate_series(1, {count}) AS i, clients c WHERE c.tenant_id = '{TENANT}'""")
        # What autovacuum would do next (the DELETE left dead rows, the INSERT a million new
        # ones): done now, so that the lookup is not measured against a vacuum of the table
        # running on the same two cores; then the checkpoint the insert's WAL would trigger.
        psql(url, "VACUUM (ANALYZE) app_sessions")
        try:
            psql(url, "CHECKPOINT")
        except subprocess.CalledProcessError:
            pass  # not a superuser (pg_checkpoint): the server checkpoints on its own schedule


def counter(base: str, name: str) -> float:
    status, _, text = request("GET", f"{base}/metrics", {"Authorization": f"Bearer {METRICS_TOKEN}"})
    if status != 200:
        return float("nan")
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name))


# --- the run ------------------------------------------------------------------------------------


def build() -> None:
    if os.environ.get("BENCH_SKIP_BUILD"):
        say("BENCH_SKIP_BUILD set: using the last build")
        return
    if ONLY != "browser" and not shutil.which("wrk"):
        if shutil.which("apt-get") and os.geteuid() == 0:
            run(["apt-get", "install", "-y", "-qq", "wrk"])
        else:
            raise SystemExit("wrk is needed: Debian/Ubuntu `sudo apt-get install wrk`, macOS `brew install wrk`")
    # Its own target directory and site (see BUILD): `make release` and the tests keep
    # target/release and target/site.
    build_env = os.environ | {"CARGO_TARGET_DIR": str(BUILD), "LEPTOS_SITE_ROOT": str(SITE)}
    run(["cargo", "leptos", "build", "--release", "--split", "--bin-features", "ssr,bench"], cwd=ROOT, env=build_env)
    run(["node", "scripts/precompress.mjs", str(SITE / "pkg")], cwd=ROOT)
    run(["cargo", "build", "--release", "-p", "fake-commerce7"], cwd=ROOT, env=build_env)
    if PEERS.is_dir() and ONLY != "browser":
        dest = TARGET / "bench-peers"
        dest.mkdir(parents=True, exist_ok=True)
        for peer in ("ts-stock", "express"):
            if (PEERS / peer).is_dir():
                shutil.copytree(PEERS / peer, dest / peer, dirs_exist_ok=True,
                                ignore=shutil.ignore_patterns("target", "node_modules"))
        if (dest / "ts-stock").is_dir():
            # The copy lives under this repository's workspace: make it a workspace of its own.
            manifest = dest / "ts-stock" / "Cargo.toml"
            if "[workspace]" not in manifest.read_text():
                manifest.write_text(manifest.read_text() + "\n[workspace]\n")
            run(["cargo", "build", "--release", "--locked", "--manifest-path", str(dest / "ts-stock" / "Cargo.toml")])
        if (dest / "express").is_dir() and shutil.which("npm"):
            run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=dest / "express")


def base_env() -> dict[str, str]:
    return {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp")}


def start_fake(name: str, latency_ms: int, scratch: Path) -> Server:
    port = free_port()
    env = base_env() | {"FAKE_C7_ADDR": f"127.0.0.1:{port}", "FAKE_C7_LATENCY_MS": str(latency_ms),
                        "COMMERCE7_USER": CALLBACK_USER, "COMMERCE7_PASSWORD": CALLBACK_PASSWORD,
                        "RUST_LOG": "warn"}
    return Server(name, [str(BUILD / "release" / "fake-commerce7")], env, port, "/", scratch)


def start_libero(name: str, database_url: str, fast: Server, slow: Server | None, scratch: Path,
                 binary: Path = BUILD / "release" / "libero", prefix: list[str] | None = None) -> Server:
    """The release bench build of Libero (or another build of it, to compare two) on
    `database_url`, Commerce7 at `fast` (and at `slow` for the re-authorisation rows); `prefix`
    runs it under another program (valgrind)."""
    port = free_port()
    env = base_env() | {
        "DATABASE_URL": database_url, "SESSION_SECRET": SECRET, "COOKIE_SECURE": "false",
        "COMMERCE7_API_URL": f"http://127.0.0.1:{fast.port}/v1", "COMMERCE7_USER": CALLBACK_USER,
        "COMMERCE7_PASSWORD": CALLBACK_PASSWORD, "METRICS_TOKEN": METRICS_TOKEN, "RATE_LIMIT_SIGN_IN": "0",
        "SESSION_TOUCH_INTERVAL": "60s", "LEPTOS_SITE_ROOT": str(SITE), "LEPTOS_SITE_PKG_DIR": "pkg",
        "LEPTOS_OUTPUT_NAME": "libero", "LEPTOS_SITE_ADDR": f"127.0.0.1:{port}",
    }
    if slow:
        env["BENCH_SLOW_COMMERCE7_URL"] = f"http://127.0.0.1:{slow.port}/v1"
    # No LEPTOS_ENV=PROD: it refuses plain-http cookies and Commerce7; the bench is loopback-only.
    return Server(name, [*(prefix or []), str(binary)], env, port, "/healthz", scratch)


def install_and_sign_in(base: str) -> tuple[str, str]:
    """Installs the bench tenant and signs its merchant in: the session cookie and a tab token.
    The bench twin of /app then borrows that session."""
    basic = base64.b64encode(f"{CALLBACK_USER}:{CALLBACK_PASSWORD}".encode()).decode()
    status, _, body = request("POST", f"{base}/install", {"Authorization": f"Basic {basic}",
                                                          "Content-Type": "application/json"},
                              json.dumps({"tenantId": TENANT, "organization": {"name": "Demo Winery"}}))
    assert status == 200, (status, body)
    sign_in = f"{base}/app?tenantId={TENANT}&account={ACCOUNT}"
    # The sign-in answers with the page itself (200), its cookie and its tab token.
    status, headers, page = request("GET", sign_in, {"Sec-Fetch-Dest": "iframe"})
    assert status == 200, status
    cookie = headers["set-cookie-all"][0].split(";")[0]
    token = re.search(r'<meta name="libero-tab" content="([^"]+)"', page).group(1)
    assert request("GET", f"{base}/__bench/app", {"Cookie": cookie})[0] == 200, "the twin borrows the session"
    return cookie, token


def bench_libero(kind: str, database_url: str, fast: Server, slow: Server, scratch: Path) -> dict:
    app = start_libero(f"libero-{kind}", database_url, fast, slow, scratch)
    base = f"http://127.0.0.1:{app.port}"
    try:
        cookie, token = install_and_sign_in(base)

        same_origin = {"Sec-Fetch-Site": "same-origin"}
        targets = [
            ("floor: bare axum hello (same binary)", "GET", "/__bench/hello", {}),
            ("floor: /healthz (Libero's middleware, no session)", "GET", "/healthz", {}),
            ("server fn, 401 path (no credential)", "POST", "/api/session_info", same_origin),
            ("server fn, cookie", "POST", "/api/session_info", same_origin | {"Cookie": cookie}),
            ("server fn, tab token (bearer)", "POST", "/api/session_info", {"Authorization": f"Bearer {token}"}),
            ("/__bench/app: dashboard without the guard", "GET", "/__bench/app", {"Cookie": cookie}),
            ("/app: dashboard, guarded", "GET", "/app", {"Cookie": cookie}),
            ("sign-in fast path", "GET", f"/app?tenantId={TENANT}&account={ACCOUNT}",
             {"Cookie": cookie, "Sec-Fetch-Dest": "iframe"}),
            ("re-authorisation per request, Commerce7 at 0 ms", "GET",
             f"/__bench/reauth?tenantId={TENANT}&account={ACCOUNT}", {}),
            ("re-authorisation per request, Commerce7 at 200 ms", "GET",
             f"/__bench/reauth?tenantId={TENANT}&account={ACCOUNT}&slow=1", {}),
        ]
        touches_before, started = counter(base, "libero_session_touches_total"), time.time()
        results = rounds(kind, base, targets, app.proc.pid)
        minutes = (time.time() - started) / 60
        touches = counter(base, "libero_session_touches_total") - touches_before
        rss = app.rss_mb()

        lookups = {}
        for count in ROW_COUNTS:
            insert_rows(kind, database_url, count)
            p50s = [wrk(base + "/api/session_info", 1, "POST", same_origin | {"Cookie": cookie})["p50"]
                    for _ in range(ROUNDS)]
            lookups[count] = statistics.median(p50s)
            say(f"{kind:8} lookup with {count:>8} rows: p50 {lookups[count]:.3f} ms "
                f"(median of {', '.join(f'{ms:.3f}' for ms in p50s)})")
        return {"rows": results, "rss_mb": rss, "touches": touches, "minutes": minutes, "lookups": lookups}
    finally:
        app.stop()


def rounds(name: str, base: str, targets: list[tuple[str, str, str, dict]], server_pid: int) -> dict:
    """Every target at every connection count, ROUNDS times, the targets interleaved within each
    round so that a drift of the machine (another process, the CPU's clock) touches them alike;
    each cell is the run with the median req/s (its p50 with it) and the median of the rounds'
    p99s — one 3-s run's p99 is one hiccup of the VM (a path that reads no database showed tens of
    ms; with an even BENCH_ROUNDS, the upper of the two middle runs and the mean of the two middle
    p99s) — carrying every round's req/s in run order under "rounds" (for paired ratios: see
    paired())."""
    runs: dict = {label: {c: [] for c in CONNECTIONS} for label, *_ in targets}
    for round_ in range(1, ROUNDS + 1):
        for c in CONNECTIONS:
            for label, method, path, headers in targets:
                run_ = wrk(base + path, c, method, headers, server_pid)
                runs[label][c].append(run_)
                say(f"{name:8} {label:55} c={c:<3} {run_['rps']:>10.0f} req/s  (round {round_}/{ROUNDS})")
    return {label: {c: sorted(cells, key=lambda r: r["rps"])[len(cells) // 2]
                    | {"p99": statistics.median(r["p99"] for r in cells), "rounds": [r["rps"] for r in cells]}
                    for c, cells in by_c.items()}
            for label, by_c in runs.items()}


def paired(a: dict, b: dict, of) -> float:
    """The median over rounds of `of(a's req/s, b's req/s)` for two cells of rounds(): a and b ran
    one after the other in each round, so the machine's drift between rounds (on a shared 2-core
    VM, ±20 % for the same page from one 3-s run to the next) cancels out of each pair."""
    values = sorted(of(x, y) for x, y in zip(a["rounds"], b["rounds"]))
    mid = len(values) // 2
    return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2


def start_peer(name: str, cmd: list[str], database_url: str, cwd: Path) -> tuple[Server, str]:
    """A peer (`cmd`: stock tower-sessions or express) on `database_url`, its bench tenant signed
    in: the server and its session cookie."""
    port = free_port()
    env = base_env() | {"SESSION_SECRET": SECRET, "DATABASE_URL": database_url, "PORT": str(port)}
    peer = Server(name, cmd, env, port, "/", cwd)
    status, headers, _ = request("GET", f"http://127.0.0.1:{port}/login?tenant={TENANT}")
    if status not in (302, 303):
        peer.stop()
        raise SystemExit(f"{name}: /login answered {status}")
    return peer, headers["set-cookie-all"][0].split(";")[0]


def bench_peer(name: str, cmd: list[str], database_url: str, cwd: Path, scratch: Path) -> dict:
    peer, cookie = start_peer(name, cmd, database_url, cwd)
    base = f"http://127.0.0.1:{peer.port}"
    try:
        rows = rounds(name, base, [("floor", "GET", "/", {}), ("guarded", "GET", "/app", {"Cookie": cookie})],
                      peer.proc.pid)
        rows["rss_mb"] = peer.rss_mb()
        return rows
    finally:
        peer.stop()


def wasm_sizes() -> list[tuple[str, int, int]]:
    """(name, raw, gzip -9) of each release wasm: first the main module (`libero.<hash>.wasm`,
    what every page loads), then the lazy-loaded chunks (`cargo leptos --split`)."""
    pkg = SITE / "pkg"
    mains = sorted(pkg.glob("libero.*.wasm"), key=lambda p: p.stat().st_mtime)
    if not mains:
        raise SystemExit(f"no libero.<hash>.wasm in {pkg}: the release build did not finish")
    chunks = sorted(p for p in pkg.glob("*.wasm") if not p.name.startswith("libero."))
    return [(f.name, f.stat().st_size, len(gzip.compress(f.read_bytes(), 9))) for f in [mains[-1], *chunks]]


def wasm_weight_section() -> list[str]:
    """What pulls weight in the main module: its code by crate (scripts/wasm_weight.py), read
    from the module the split left for wasm-bindgen (it still has the function names)."""
    module = BUILD / "front" / "wasm32-unknown-unknown" / "wasm-release" / "libero_split.wasm"
    if not module.exists():
        return []
    import wasm_weight

    try:
        _, by_crate = wasm_weight.weigh(module)
    except wasm_weight.NoNames as err:
        return ["", f"What pulls weight in the main module: not measured ({err})"]
    counted = wasm_weight.code_total(by_crate)
    return ["", f"What pulls weight in the main module (`scripts/wasm_weight.py`: code by crate, "
                f"{counted / 1024:.0f} KB before wasm-opt):", "",
            *(f"  - {size / counted:.1%} {crate}" for crate, size in wasm_weight.top(by_crate, 14))]


def fmt_row(label: str, runs: dict) -> str:
    cells = " | ".join(f"{runs[c]['rps']:,.0f} ({runs[c]['p50']:.2f}/{runs[c]['p99']:.2f})" for c in CONNECTIONS)
    return f"| {label} | {cells} |"


def main() -> None:
    BUILD.mkdir(parents=True, exist_ok=True)
    build()
    if ONLY == "browser":
        write_browser_report(bench_browser())
        return
    if ONLY:
        raise SystemExit(f"BENCH_ONLY={ONLY!r}: only `browser` is known")
    scratch = Path(tempfile.mkdtemp(prefix="libero-bench-"))
    fast = start_fake("fake-commerce7-0ms", 0, scratch)
    slow = start_fake("fake-commerce7-200ms", 200, scratch)
    report: dict = {"libero": {}, "peers": {}}
    databases = [("sqlite", f"sqlite://{scratch}/bench.db?mode=rwc")]
    pg_urls = []
    if postgres_available():
        databases.append(("postgres", fresh_postgres("libero_bench")))
        pg_urls = [fresh_postgres("libero_bench_peer"), fresh_postgres("libero_bench_express")]
    else:
        say(f"PostgreSQL not reachable at {PG_ADMIN}: its column is left out")
    try:
        for kind, url in databases:
            report["libero"][kind] = bench_libero(kind, url, fast, slow, scratch)
        stock = TARGET / "bench-peers" / "ts-stock" / "target" / "release" / "ts-stock"
        if stock.exists():
            report["peers"]["stock tower-sessions, SQLite"] = bench_peer(
                "ts-stock-sqlite", [str(stock)], f"sqlite://{scratch}/peer.db?mode=rwc", scratch, scratch)
            if pg_urls:
                report["peers"]["stock tower-sessions, PostgreSQL"] = bench_peer(
                    "ts-stock-postgres", [str(stock)], pg_urls[0], scratch, scratch)
        express = TARGET / "bench-peers" / "express"
        if pg_urls and (express / "node_modules").is_dir():
            report["peers"]["express + connect-pg-simple, PostgreSQL"] = bench_peer(
                "express-postgres", ["node", "server.js"], pg_urls[1], express, scratch)
    finally:
        fast.stop()
        slow.stop()
        shutil.rmtree(scratch, ignore_errors=True)
    write_report(report)
    if BROWSER_RUNS > 0:
        write_browser_report(bench_browser())


def bench_browser() -> dict | None:
    """Chromium opening Libero from the admin simulator over the throttled link (release build)."""
    end2end = ROOT / "end2end"
    if not (end2end / "node_modules").is_dir() or not Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")).exists():
        say("browser timings left out: end2end/node_modules or Chromium missing (make setup installs both)")
        return None
    # BUILD is the layout end2end/support/servers.ts expects: <dir>/release/{libero,fake-commerce7,
    # hash.txt} and <dir>/site (this build's site, kept apart from debug builds).
    out = BUILD / "browser.json"
    out.unlink(missing_ok=True)
    say(f"browser timings: {BROWSER_RUNS} cold and {BROWSER_RUNS} warm opens over 1.6 Mbps / 150 ms, "
        f"Commerce7 at {C7_LATENCY_MS} ms")
    env = os.environ | {"E2E_TARGET_DIR": str(BUILD), "E2E_PROFILE": "release", "BENCH_BROWSER_OUT": str(out),
                        "BENCH_BROWSER_RUNS": str(BROWSER_RUNS), "E2E_C7_LATENCY_MS": str(C7_LATENCY_MS)}
    result = subprocess.run(["npx", "playwright", "test", "-c", "bench.config.ts"], cwd=end2end, env=env)
    if result.returncode != 0 or not out.exists():
        raise SystemExit("the browser timings failed (see above)")
    return json.loads(out.read_text())


def write_browser_report(browser: dict | None) -> None:
    """bench/open-timing.md: what a merchant waits for, from the admin's Open to the dashboard."""
    if not browser:
        return
    lines = ["# Opening Libero from the Commerce7 admin", "", *run_header(),
             f"- Chromium, the app in the admin simulator's cross-site iframe, {browser['link']}",
             f"- every open is a sign-in as in production: the simulator mints a fresh account token per open "
             f"and its Commerce7 answers `GET /account/user` in {C7_LATENCY_MS} ms",
             f"- {browser['runs']} opens each, p50 (all runs) in ms; cold: a new browser context, warm: the same "
             f"context opening Libero again; the cold wasm download: {browser['wasm_bytes_on_the_wire'] / 1024:.0f} KB "
             f"on the wire in {browser['wasm_download_ms']} ms",
             "", "| cache | visible (first paint) | interactive (hydrated) |", "|---|---|---|"]
    for state in ("cold", "warm"):
        b = browser[state]
        lines.append(f"| {state} | {b['visible_p50_ms']} ({', '.join(map(str, b['visible_ms']))}) | "
                     f"{b['interactive_p50_ms']} ({', '.join(map(str, b['interactive_ms']))}) |")
    text = "\n".join(lines + [""])
    (ROOT / "bench").mkdir(exist_ok=True)
    (ROOT / "bench" / "open-timing.md").write_text(text)
    print()
    print(text)


def run_header() -> list[str]:
    """The date, commit and machine of this run."""
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True).stdout
    cpu = next((l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines()
                if l.startswith("model name")), platform.processor())
    return [f"- date: {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M UTC}; commit {commit}{' (with local changes)' if dirty else ''}",
            f"- machine: {os.cpu_count()} cores, {cpu}; {platform.system()} {platform.release()}"]


def cpu_section(report: dict, c: int) -> list[str]:
    """Where each request's machine time goes: the CPU time per request of the server process,
    of PostgreSQL and of wrk, and the guard's share of each (guarded minus its own floor)."""
    cores = os.cpu_count() or 1
    lines = ["", f"## Where the machine time goes ({c} connections)", "",
             f"CPU time per request in µs, read from /proc around each run: the server's process (all its threads), "
             f"every PostgreSQL process, wrk; `all` is {cores} cores × the run's wall time / its requests (the "
             "difference is idle time and the kernel's work outside these processes).", "",
             "| stack: target | server | PostgreSQL | wrk | all |", "|---|---|---|---|---|"]
    splits = []

    def row(label: str, cell: dict) -> None:
        cpu = cell.get("cpu")
        if cpu:
            lines.append(f"| {label} | {cpu['app_us']:.1f} | {cpu['db_us']:.1f} | {cpu['wrk_us']:.1f} | "
                         f"{cores * 1e6 / cell['rps']:.1f} |")

    def split(label: str, guarded: dict, floor: dict) -> None:
        g, f = guarded.get("cpu"), floor.get("cpu")
        if g and f:
            splits.append(f"- {label}: {g['app_us'] - f['app_us']:+.1f} µs in the server, "
                          f"{g['db_us'] - f['db_us']:+.1f} µs in PostgreSQL, {g['wrk_us'] - f['wrk_us']:+.1f} µs in wrk")

    for kind, data in report["libero"].items():
        rows = data["rows"]
        for label in ("server fn, 401 path (no credential)", "server fn, cookie", "server fn, tab token (bearer)",
                      "/__bench/app: dashboard without the guard", "/app: dashboard, guarded"):
            row(f"Libero, {kind}: {label}", rows[label][c])
        split(f"Libero, {kind}: the guard on the server fn (cookie − 401 path)",
              rows["server fn, cookie"][c], rows["server fn, 401 path (no credential)"][c])
        split(f"Libero, {kind}: the guard on /app (/app − its twin)",
              rows["/app: dashboard, guarded"][c], rows["/__bench/app: dashboard without the guard"][c])
    for name, rows in report["peers"].items():
        row(f"{name}: floor", rows["floor"][c])
        row(f"{name}: guarded page", rows["guarded"][c])
        split(f"{name}: the guard (guarded − floor)", rows["guarded"][c], rows["floor"][c])
    return lines + ["", "The guard's share of each (CPU µs per request):", "", *splits] if splits else []


def write_report(report: dict) -> None:
    wasm = wasm_sizes()
    header = " | ".join(f"c={c}: req/s (p50/p99 ms)" for c in CONNECTIONS)
    lines = [
        "# Benchmark results",
        "",
        *run_header(),
        f"- load: wrk, {DURATION} s per run, 1–2 threads, loopback; each cell the median of {ROUNDS} interleaved runs "
        "(req/s and p50 of the run with the median req/s, p99 the median of the runs' p99s); "
        "Libero release build with `--features bench`",
        f"- PostgreSQL: the local server {pg_transport()} without TLS (`sslmode=disable`) for every stack alike",
        "",
    ]
    ratios = []
    for kind, data in report["libero"].items():
        rows = data["rows"]
        lines += [f"## Libero on {kind}", "", f"| target | {header} |", "|---|" + "---|" * len(CONNECTIONS)]
        lines += [fmt_row(label, runs) for label, runs in rows.items()]
        lines += ["", f"- server RSS after the runs: {data['rss_mb']:.0f} MB",
                  f"- database writes of `last_activity_at`: {data['touches']:.0f} in {data['minutes']:.1f} min of load on one session "
                  f"(SESSION_TOUCH_INTERVAL=60s: at most one per minute)",
                  f"- lookup p50 (`/api/session_info`, 1 connection, median of {ROUNDS} runs) with extra live rows: "
                  + ", ".join(f"{n:,}: {ms:.3f} ms" for n, ms in data["lookups"].items()), ""]
        ratios.append((kind, rows, data))
    if report["peers"]:
        lines += ["## Peers", "", f"| peer | {header} |", "|---|" + "---|" * len(CONNECTIONS)]
        for name, rows in report["peers"].items():
            lines.append(fmt_row(f"{name}: floor", rows["floor"]))
            lines.append(fmt_row(f"{name}: guarded page", rows["guarded"]))
        lines.append("")
    lines += ["## Ratios (16 connections)", ""]
    c = 16 if 16 in CONNECTIONS else CONNECTIONS[-1]
    healthz, hello = "floor: /healthz (Libero's middleware, no session)", "floor: bare axum hello (same binary)"
    for kind, rows, data in ratios:
        r = lambda label: rows[label][c]["rps"]
        us = lambda label: 1e6 / r(label)
        overhead = us("server fn, cookie") - us("server fn, 401 path (no credential)")
        overhead_bearer = us("server fn, tab token (bearer)") - us("server fn, 401 path (no credential)")
        lines.append(f"- {kind}: guard cost over its 401 path {overhead:.1f} µs/request (cookie), "
                     f"{overhead_bearer:.1f} µs (tab token); bearer vs cookie {r('server fn, tab token (bearer)') / r('server fn, cookie'):.2f}×")
        cell = lambda label: rows[label][c]
        paired_overhead = paired(cell("server fn, cookie"), cell("server fn, 401 path (no credential)"),
                                 lambda x, y: 1e6 / x - 1e6 / y)
        lines.append(f"- {kind}: /healthz = {r(healthz) / r(hello):.0%} of bare axum; "
                     f"guarded /app = {r('/app: dashboard, guarded') / r('/__bench/app: dashboard without the guard'):.0%} of its unguarded twin")
        lines.append(f"- {kind}, paired (median over the {ROUNDS} rounds of each round's ratio): guard cost over its 401 path "
                     f"{paired_overhead:.1f} µs/request (cookie); /healthz = "
                     f"{paired(cell(healthz), cell(hello), lambda x, y: x / y):.0%} of bare axum; guarded /app = "
                     f"{paired(cell('/app: dashboard, guarded'), cell('/__bench/app: dashboard without the guard'), lambda x, y: x / y):.0%} "
                     "of its unguarded twin")
        # At one connection (or the fewest BENCH_CONNECTIONS names): latency, not throughput.
        few = min(CONNECTIONS)
        fast, reauth = rows['sign-in fast path'][few]['p50'], rows['re-authorisation per request, Commerce7 at 200 ms'][few]['p50']
        lines.append(f"- {kind}: sign-in fast path p50 {fast:.2f} ms vs re-authorisation at 200 ms {reauth:.2f} ms: "
                     f"{reauth / fast:.0f}× ({few} connection{'s' if few > 1 else ''})")
        stock = report["peers"].get(f"stock tower-sessions, {'SQLite' if kind == 'sqlite' else 'PostgreSQL'}")
        if stock:
            peer_overhead = 1e6 / stock["guarded"][c]["rps"] - 1e6 / stock["floor"][c]["rps"]
            lines.append(f"- {kind}: stock tower-sessions guard cost over its floor {peer_overhead:.1f} µs/request "
                         f"(Libero's: {overhead:.1f} µs); paired: "
                         f"{paired(stock['guarded'][c], stock['floor'][c], lambda x, y: 1e6 / x - 1e6 / y):.1f} µs "
                         f"(Libero's: {paired_overhead:.1f} µs)")
            many = max(CONNECTIONS)
            lines.append(f"- {kind}: p99 at {many} connections, the cookie call vs stock tower-sessions' guarded page: "
                         f"{rows['server fn, cookie'][many]['p99']:.2f} vs {stock['guarded'][many]['p99']:.2f} ms")
        express = report["peers"].get("express + connect-pg-simple, PostgreSQL")
        if express and kind == "postgres":
            lines.append(f"- {kind}: guarded JSON vs express guarded page: "
                         f"{r('server fn, cookie') / express['guarded'][c]['rps']:.1f}×")
    lines += cpu_section(report, c)
    (main_name, main_raw, main_gz), chunks = wasm[0], wasm[1:]
    lines += ["", f"- release wasm `{main_name}` (the main module, loaded by every page): "
                  f"{main_raw / 1024:.0f} KB raw, {main_gz / 1024:.0f} KB gzip -9"]
    lines += [f"  - lazy chunk `{name}`: {raw / 1024:.0f} KB raw, {gz / 1024:.0f} KB gzip -9" for name, raw, gz in chunks]
    lines += wasm_weight_section()
    lines += [""]
    text = "\n".join(lines)
    (ROOT / "bench").mkdir(exist_ok=True)
    (ROOT / "bench" / "results.md").write_text(text)
    (BUILD / "results.json").write_text(json.dumps(report, indent=1, default=str))
    print()
    print(text)


if __name__ == "__main__":
    main()
