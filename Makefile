# `make run`: set up, start the devnet and the daemon (foreground, live status view; Ctrl-C stops what it started).
# `make test`: set up, then the whole suite against real anvil devnets, then the example dApp's suite.
# `make example-test`: the example dApp's suite (examples/xchain_counter) as an outside team runs it: a fresh
# virtualenv with the package installed from this checkout (not editable), anvil and solcjs on PATH.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PY_STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
EXAMPLE_VENV := .venv-example
EXAMPLE_DIR := examples/xchain_counter
# `make test` runs `make example-test` through this name, not $(MAKE): make runs a recipe line naming $(MAKE) even
# under `make -n`, and that line is the whole test recipe
SUBMAKE = $(MAKE)

.PHONY: setup run test example-test bench lint contracts clean

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

# four phases: the suite on two xdist workers, whole files each; the adversarial suite on two workers alone; the
# serial tests alone (tests/conftest.py); the example dApp's suite (example-test); every phase runs whatever the ones
# before found; the exit status is the first failing phase's
test: setup
	@parallel=0; adversarial=0; serial=0; example=0; \
	$(BIN)/python -m pytest -q --durations=25 -n 2 --dist loadfile -m "not serial and not adversarial" || parallel=$$?; \
	$(BIN)/python -m pytest -q --durations=10 -n 2 --dist loadfile -m adversarial || adversarial=$$?; \
	$(BIN)/python -m pytest -q --durations=25 -m serial || serial=$$?; \
	$(SUBMAKE) --no-print-directory example-test || example=$$?; \
	for status in $$parallel $$adversarial $$serial $$example; do if [ $$status -ne 0 ]; then exit $$status; fi; done

# The example's suite from a fresh virtualenv (made anew each run; pip's cache makes that quick) holding this package
# installed as a user installs it (`pip install .`, so from site-packages: no repository test helpers, no conftest),
# pytest and pytest-xdist; node_modules/.bin on PATH stands for an outside team's `npm i -g @foundry-rs/anvil solc`.
# pytest runs in the example's directory (its pytest.ini: the rootdir) on two xdist workers: two plugin sessions,
# two devnets at once on this machine, on ports of their own.
example-test: $(NODE_STAMP)
	rm -rf $(EXAMPLE_VENV) build
	$(PYTHON) -m venv $(EXAMPLE_VENV)
	@echo "pip install . pytest pytest-xdist (log: $(EXAMPLE_VENV)/pip.log)"
	@start=$$(date +%s); \
	$(EXAMPLE_VENV)/bin/python -m pip install --disable-pip-version-check . pytest pytest-xdist \
	  > $(EXAMPLE_VENV)/pip.log 2>&1 || { tail -n 30 $(EXAMPLE_VENV)/pip.log; exit 1; }; \
	echo "installed in $$(( $$(date +%s) - start )) s"
	rm -rf build
	cd $(EXAMPLE_DIR) && $(CURDIR)/$(EXAMPLE_VENV)/bin/python -c \
	  'import relayer; print("relayer from", relayer.__file__); assert "/site-packages/" in relayer.__file__'
	cd $(EXAMPLE_DIR) && PATH="$(CURDIR)/node_modules/.bin:$$PATH" \
	  $(CURDIR)/$(EXAMPLE_VENV)/bin/python -m pytest -q -p no:cacheprovider -n 2 --durations=10

bench: setup
	$(BIN)/relayer bench relay --messages 10000

lint: setup
	$(BIN)/ruff check config adapters light_clients router relayer devnets tests
	$(BIN)/mypy config adapters light_clients relayer router devnets

contracts: $(NODE_STAMP)
	node scripts/compile-contracts.mjs

clean:
	-$(BIN)/relayer devnet down
	rm -rf $(VENV) $(EXAMPLE_VENV) node_modules .devnet
