# Libero: the two commands a newcomer needs are `make dev` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help
export PATH := $(HOME)/.cargo/bin:$(CURDIR)/end2end/node_modules/.bin:$(PATH)

.PHONY: help setup dev test bench release screenshots fake-commerce7 fmt

help:
	@echo "make dev    install what is missing, then run the app (http://127.0.0.1:3000) with live reload"
	@echo "make test   install what is missing, then run every test (Rust on SQLite+PostgreSQL, Playwright)"
	@echo "make bench  release build, then load Libero and its peers with wrk (SQLite+PostgreSQL): bench/results.md"

setup:
	@scripts/bootstrap.sh

dev: setup
	@scripts/dev.sh

test: setup
	@scripts/test.sh

fake-commerce7:
	cargo run -p fake-commerce7

bench: setup
	@python3 scripts/bench.py

# The README's pictures (docs/images), taken by Playwright in the admin simulator.
screenshots: setup
	@scripts/screenshots.sh

# The site with hashed names (target/site) and its hash file next to the server binary
# (target/release/hash.txt), then the .br/.gz siblings the server sends as they are.
release: setup
	cargo leptos build --release --split
	node scripts/precompress.mjs target/site/pkg

fmt:
	cargo fmt --all
