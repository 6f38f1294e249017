#!/usr/bin/env bash
# Development: the fake Commerce7 (http://localhost:4010) beside `cargo leptos watch`
# (http://127.0.0.1:3000). Run through `make dev`.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PWD/end2end/node_modules/.bin:$PATH"

cargo build -p fake-commerce7
target/debug/fake-commerce7 &
fake_pid=$!
trap 'kill "$fake_pid" 2>/dev/null || true' EXIT INT TERM

cat <<'MSG'

  Libero:                      http://127.0.0.1:3000
  Commerce7 admin simulator:   http://localhost:4010   (install, then open Libero in its iframe)

MSG
# The simulator's stand-in for Commerce7's frame script, unless the environment or an older .env
# (from before the setting) names one: offline, Commerce7's own would never load.
if [ -z "${COMMERCE7_FRAME_SCRIPT+set}" ] && ! grep -q '^COMMERCE7_FRAME_SCRIPT=' .env 2>/dev/null; then
  export COMMERCE7_FRAME_SCRIPT=http://localhost:4010/v2/commerce7.js
fi
# Plain /pkg names in development: cargo-leptos 0.3.11 hashes only the first build of `watch`,
# so after an edit the page would still load the first build's hashed files.
LEPTOS_HASH_FILES=false cargo leptos watch --split
