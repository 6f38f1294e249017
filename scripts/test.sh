#!/usr/bin/env bash
# The whole test suite: Rust unit + integration tests (SQLite and PostgreSQL), then Playwright
# in Chromium against the real server. Run through `make test`.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PWD/end2end/node_modules/.bin:$PATH"

pg_url="${TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
if ! (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; then
  if [ -n "${CI:-}" ]; then
    echo "PostgreSQL is not reachable at $pg_url and CI is set: failing." >&2
    exit 1
  fi
  echo "NOTICE: PostgreSQL is not reachable at $pg_url: the PostgreSQL variants of the tests will be SKIPPED." >&2
fi

mkdir -p target
echo "==> Rust tests (unit + integration, SQLite and PostgreSQL)"
cargo test --features ssr --no-fail-fast 2>&1 | tee target/rust-tests.log

echo "==> Building the site for the browser tests"
cargo leptos build

echo "==> Playwright (Chromium)"
(cd end2end && npx playwright test)

rust_passed=$(grep -Eo 'test result: ok\. [0-9]+ passed' target/rust-tests.log | awk '{s+=$4} END {print s+0}')
mkdir -p target
echo "==> Rust tests passed: $rust_passed"
