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

# `npm ci` refuses a lock that lacks @foundry-rs/anvil's optional builds for other platforms, and a registry
# that serves only this platform's build cannot produce one; `npm install --no-save` then installs exactly
# the locked versions and leaves package-lock.json untouched.
$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=silent || { \
	  echo "npm ci refused the lock (anvil's other-platform builds are not in this registry): npm install --no-save"; \
	  npm install --no-save --no-audit --no-fund --loglevel=error; }
	@test -x node_modules/.bin/anvil && test -x node_modules/.bin/solcjs
	@touch $@

run: setup
	$(BIN)/relayer run --start-devnet

# two phases (tests/conftest.py): the suite on two xdist workers, whole files each, then the serial tests alone;
# both phases run whatever the first found; the exit status is the first failing phase's
test: setup
	@parallel=0; serial=0; \
	$(BIN)/python -m pytest -q --durations=25 -n 2 --dist loadfile -m "not serial" || parallel=$$?; \
	$(BIN)/python -m pytest -q --durations=25 -m serial || serial=$$?; \
	if [ $$parallel -ne 0 ]; then exit $$parallel; fi; exit $$serial

bench: setup
	$(BIN)/relayer bench relay --messages 10000

lint: setup
	$(BIN)/ruff check config adapters light_clients router relayer devnets tests
	$(BIN)/mypy config adapters light_clients relayer router devnets

contracts: $(NODE_STAMP)
	node scripts/compile-contracts.mjs

clean:
	-$(BIN)/relayer devnet down
	rm -rf $(VENV) node_modules .devnet
