# Libero: the two commands a newcomer needs are `make dev` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help
export PATH := $(HOME)/.cargo/bin:$(CURDIR)/end2end/node_modules/.bin:$(PATH)

.PHONY: help setup dev test release fake-commerce7 fmt

help:
	@echo "make dev    install what is missing, then run the app (http://127.0.0.1:3000) with live reload"
	@echo "make test   install what is missing, then run every test (Rust on SQLite+PostgreSQL, Playwright)"

setup:
	@scripts/bootstrap.sh

dev: setup
	@scripts/dev.sh

test: setup
	@scripts/test.sh

fake-commerce7:
	cargo run -p fake-commerce7

release: setup
	cargo leptos build --release

fmt:
	cargo fmt --all
