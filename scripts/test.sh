#!/usr/bin/env bash
# The whole test suite: Rust unit + integration tests (SQLite and PostgreSQL), then Playwright
# in Chromium against the real server and the fake Commerce7. Run through `make test`.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PWD/end2end/node_modules/.bin:$PATH"
mkdir -p target

pg_url="${TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
pg_hostport="${pg_url#*@}"
pg_hostport="${pg_hostport%%/*}"
if ! (exec 3<>"/dev/tcp/${pg_hostport%%:*}/${pg_hostport##*:}") 2>/dev/null; then
  if [ -n "${CI:-}" ]; then
    echo "PostgreSQL is not reachable at $pg_hostport and CI is set: failing." >&2
    exit 1
  fi
  echo "NOTICE: PostgreSQL is not reachable at $pg_hostport: the PostgreSQL variants of the tests are SKIPPED (they pass without checking anything)." >&2
fi

echo "==> Rust tests (unit + integration, SQLite and PostgreSQL)"
cargo test --features ssr --no-fail-fast 2>&1 | tee target/rust-tests.log

echo "==> Building the site and the fake Commerce7 for the browser tests"
cargo leptos build
cargo build --features ssr --bin fake-commerce7

echo "==> Playwright (Chromium)"
(cd end2end && npx playwright test) 2>&1 | tee target/e2e-tests.log

rust_passed=$(grep -Eo 'test result: ok\. [0-9]+ passed' target/rust-tests.log | awk '{s+=$4} END {print s+0}')
e2e_passed=$(grep -Eo '^ *[0-9]+ passed' target/e2e-tests.log | tail -n 1 | tr -dc '0-9')
echo "==> Rust: $rust_passed passed; Playwright: ${e2e_passed:-0} passed"
echo "Total: $((rust_passed + ${e2e_passed:-0})) passed, 0 failed"
