# `make run`: set up, start the devnet and the daemon (foreground, live status view; Ctrl-C stops what it started).
# `make test`: set up, then the whole suite against real anvil devnets.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PY_STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed

.PHONY: setup run test bench lint contracts clean

setup: $(PY_STAMP) $(NODE_STAMP)

$(PY_STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	@touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

run: setup
	$(BIN)/relayer run --start-devnet

test: setup
	$(BIN)/python -m pytest -q

bench: setup
	$(BIN)/relayer bench relay --messages 10000

lint: setup
	$(BIN)/ruff check config adapters light_clients router relayer tests
	$(BIN)/mypy config adapters relayer

contracts: $(NODE_STAMP)
	node scripts/compile-contracts.mjs

clean:
	-$(BIN)/relayer devnet down
	rm -rf $(VENV) node_modules .devnet
