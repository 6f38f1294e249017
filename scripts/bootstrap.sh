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

# 0. What this script cannot install for you: say exactly what is missing, all at once.
missing=()
command -v rustup >/dev/null 2>&1 \
  || missing+=("rustup — install it from https://rustup.rs (curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh), then open a new shell")
command -v cc >/dev/null 2>&1 \
  || missing+=("a C compiler (cc) — Debian/Ubuntu: sudo apt-get install build-essential; Fedora: sudo dnf install gcc; macOS: xcode-select --install")
if ! command -v node >/dev/null 2>&1; then
  missing+=("Node.js 18 or newer — https://nodejs.org, macOS: brew install node, Debian/Ubuntu: sudo apt-get install nodejs npm")
elif [ "$(node -p 'process.versions.node.split(".")[0]')" -lt 18 ]; then
  missing+=("Node.js 18 or newer (found $(node --version)) — https://nodejs.org or brew install node")
fi
command -v npm >/dev/null 2>&1 \
  || missing+=("npm (comes with Node.js; Debian/Ubuntu: sudo apt-get install npm)")
if [ ${#missing[@]} -gt 0 ]; then
  echo "Libero's set-up needs these first:" >&2
  for item in "${missing[@]}"; do echo "  - $item" >&2; done
  exit 1
fi

# 1. The pinned Rust toolchain and its wasm32 target (RUSTUP_AUTO_INSTALL may be 0).
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

# 4. npm dependencies: Playwright and npm's binaryen (wasm-opt; Debian's 108 breaks hydration).
if [ ! -d end2end/node_modules/@playwright/test ] || [ ! -x end2end/node_modules/.bin/wasm-opt ] \
  || [ end2end/package-lock.json -nt end2end/node_modules/.package-lock.json ]; then
  say "installing end2end npm dependencies"
  (cd end2end && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
fi

# 5. Chromium for Playwright: CHROMIUM_PATH if given; else Debian's package (as root with apt);
#    else Playwright's own Chromium, which needs no root (macOS, non-root Linux users).
if [ -n "${CHROMIUM_PATH:-}" ]; then
  [ -x "$CHROMIUM_PATH" ] || { echo "CHROMIUM_PATH=$CHROMIUM_PATH is not an executable" >&2; exit 1; }
elif [ ! -x /usr/bin/chromium ]; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    say "installing Debian's chromium"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    say "no system Chromium: installing Playwright's Chromium (once, no root needed; or set CHROMIUM_PATH)"
    (cd end2end && npx playwright install chromium)
  fi
fi

# 6. A development .env with a fresh SESSION_SECRET (never in CI: tests set their own).
if [ ! -f .env ] && [ -z "${CI:-}" ]; then
  secret=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
  sed "s/^SESSION_SECRET=.*/SESSION_SECRET=$secret/" .env.example > .env
  say "created .env with a freshly generated SESSION_SECRET (git-ignored; keep it private)"
fi
say "ready"
