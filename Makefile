# Libero: the two commands a newcomer needs are `make dev` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help
export PATH := $(HOME)/.cargo/bin:$(CURDIR)/end2end/node_modules/.bin:$(PATH)

.PHONY: help setup dev test test-rust test-e2e build-site release fmt

help:
	@echo "make dev    install what is missing, then run the app (http://127.0.0.1:3000) with live reload"
	@echo "make test   install what is missing, then run every test (Rust on SQLite+PostgreSQL, Playwright)"

setup:
	@scripts/bootstrap.sh

dev: setup
	cargo leptos watch

test: setup
	@scripts/test.sh

release: setup
	cargo leptos build --release

fmt:
	cargo fmt --all
