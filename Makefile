# Two commands for a fresh machine: `make run` and `make test`. Each installs what it needs first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CERBOS := node_modules/@cerbos/cerbos-linux-x64/cerbos-linux-x64

.PHONY: run test setup lint typecheck policy-test pytest redis-server schema bench clean

$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# Test-only npm packages: Apollo's composition library and graphql-js (tests/clients/test_federation.py).
FEDERATION_CLIENT := tests/clients/federation
$(FEDERATION_CLIENT)/node_modules/.installed: $(FEDERATION_CLIENT)/package.json $(FEDERATION_CLIENT)/package-lock.json
	cd $(FEDERATION_CLIENT) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

setup: $(BIN)/.installed node_modules/.installed

run: setup
	exec $(BIN)/cityos serve

# Tests start their own redis-server; install it when the machine has none (Debian/Ubuntu, as root or via sudo).
redis-server:
	@command -v redis-server >/dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq redis-server >/dev/null; }

lint: setup
	$(BIN)/ruff check cityos tests migrations bench
	$(BIN)/mypy

policy-test: setup
	$(CERBOS) compile policies/

pytest: setup redis-server $(FEDERATION_CLIENT)/node_modules/.installed
	$(BIN)/pytest

test: setup redis-server lint policy-test pytest

schema: setup
	$(BIN)/cityos schema export

clean:
	rm -rf $(VENV) node_modules $(FEDERATION_CLIENT)/node_modules .pytest_cache .mypy_cache .ruff_cache

# The benchmark against PostGraphile (installs wrk from Debian and PostGraphile from npm; writes bench/results/).
bench: setup
	@command -v wrk >/dev/null || { SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq wrk >/dev/null; }
	cd bench/postgraphile && npm ci --no-audit --no-fund --loglevel=error
	$(BIN)/pip install --quiet py-spy
	$(BIN)/python -m bench.run --profile
