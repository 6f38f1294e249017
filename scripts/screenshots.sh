#!/usr/bin/env bash
# make screenshots: the README's pictures (docs/images/dashboard-{light,dark}.png), taken by
# Playwright in Chromium of Libero framed in the fake Commerce7's admin simulator, from a debug
# build as `make test` builds it.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PWD/end2end/node_modules/.bin:$PATH"
cargo leptos build --split
cargo build -p fake-commerce7
(cd end2end && npx playwright test -c screenshots.config.ts)
ls -l docs/images/dashboard-light.png docs/images/dashboard-dark.png
