#!/usr/bin/env bash
# Installs everything Libero needs to build and test, skipping what is already there.
# Idempotent; safe on CI, on these sandboxed machines and on an ordinary developer machine.
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_LEPTOS_VERSION=0.3.11
# Must match the `wasm-bindgen = "=…"` pin in Cargo.toml: cargo-leptos does not check it.
WASM_BINDGEN_VERSION=$(sed -n 's/^wasm-bindgen = { version = "=\([0-9.]*\)".*/\1/p' Cargo.toml)
[ -n "$WASM_BINDGEN_VERSION" ] || { echo "cannot read the wasm-bindgen pin from Cargo.toml" >&2; exit 1; }

say() { printf '\033[1;34m[bootstrap]\033[0m %s\n' "$*"; }
export PATH="$HOME/.cargo/bin:$PATH"

# 1. The pinned Rust toolchain and its wasm32 target (RUSTUP_AUTO_INSTALL may be 0).
if ! command -v rustup >/dev/null 2>&1; then
  echo "rustup is required: https://rustup.rs" >&2
  exit 1
fi
toolchain=$(sed -n 's/^channel *= *"\(.*\)"/\1/p' rust-toolchain.toml)
if ! rustup run "$toolchain" rustc --print target-libdir --target wasm32-unknown-unknown >/dev/null 2>&1 \
  || [ ! -d "$(rustup run "$toolchain" rustc --print target-libdir --target wasm32-unknown-unknown)" ]; then
  say "installing Rust $toolchain with the wasm32 target"
  rustup toolchain install
fi

# 2. cargo-leptos (no_downloads: a missing helper fails at once instead of hanging on GitHub).
if [ "$(cargo leptos --version 2>/dev/null | awk '{print $2}')" != "$CARGO_LEPTOS_VERSION" ]; then
  say "installing cargo-leptos $CARGO_LEPTOS_VERSION (about 15 minutes on 2 cores, once)"
  CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
    cargo install cargo-leptos --version "$CARGO_LEPTOS_VERSION" --locked --features no_downloads
fi

# 3. wasm-bindgen-cli, exactly the version the crate pins.
if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$WASM_BINDGEN_VERSION" ]; then
  say "installing wasm-bindgen-cli $WASM_BINDGEN_VERSION"
  # No --locked: its lockfile names a crate version the registry no longer serves.
  CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
    cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION" --force
fi

# 4. Chromium for Playwright. Debian's package where we can install it; elsewhere Playwright's own.
if [ -z "${CHROMIUM_PATH:-}" ] && [ ! -x /usr/bin/chromium ]; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    say "installing Debian's chromium"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    say "no /usr/bin/chromium: Playwright will use its own browser (run 'npx playwright install chromium' in end2end/ once)"
  fi
fi

# 5. npm dependencies: Playwright and npm's binaryen (wasm-opt; Debian's 108 breaks hydration).
if [ ! -d end2end/node_modules/@playwright/test ] || [ ! -x end2end/node_modules/.bin/wasm-opt ] \
  || [ end2end/package-lock.json -nt end2end/node_modules/.package-lock.json ]; then
  say "installing end2end npm dependencies"
  (cd end2end && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
fi

# 6. A development .env with a fresh SESSION_SECRET (never in CI: tests set their own).
if [ ! -f .env ] && [ -z "${CI:-}" ]; then
  secret=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
  sed "s/^SESSION_SECRET=.*/SESSION_SECRET=$secret/" .env.example > .env
  say "created .env with a freshly generated SESSION_SECRET (git-ignored; keep it private)"
fi
say "ready"
