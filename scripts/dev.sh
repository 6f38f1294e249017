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
# Plain /pkg names in development: cargo-leptos 0.3.11 hashes only the first build of `watch`,
# so after an edit the page would still load the first build's hashed files.
LEPTOS_HASH_FILES=false cargo leptos watch --split
