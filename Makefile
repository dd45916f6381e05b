# Two commands for a fresh machine: `make run` and `make test`. Each installs what it needs first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CERBOS := node_modules/@cerbos/cerbos-linux-x64/cerbos-linux-x64

.PHONY: run test setup lint typecheck policy-test pytest redis-server chromium ops-tools test-clients schema bench clean

$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# GraphiQL's pinned assets, served by the API itself (cityos/http/graphiql.py): no CDN, works offline.
web/graphiql/node_modules/.installed: web/graphiql/package.json web/graphiql/package-lock.json
	cd web/graphiql && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# Test-only npm clients: graphql-ws (+ ws) for subscriptions, playwright-core driving Debian's chromium,
# Apollo's composition library and graphql-js for federation.
tests/clients/%/node_modules/.installed: tests/clients/%/package.json tests/clients/%/package-lock.json
	cd tests/clients/$* && npm ci --no-audit --no-fund --loglevel=error
	touch $@

setup: $(BIN)/.installed node_modules/.installed web/graphiql/node_modules/.installed

run: setup
	exec $(BIN)/cityos serve

# Tests start their own redis-server; install it when the machine has none (Debian/Ubuntu, as root or via sudo).
redis-server:
	@command -v redis-server >/dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq redis-server >/dev/null; }

# The GraphiQL browser test drives Debian's chromium (never a downloaded browser); install it when absent.
chromium:
	@command -v chromium >/dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }

# Operations checks: kubectl's built-in kustomize renders deploy/k8s overlays; promtool (Debian's prometheus
# package) checks and unit-tests deploy/prometheus alert rules; pg_dump/pg_restore come with the embedded Postgres.
ops-tools:
	@command -v kubectl >/dev/null || { SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq kubectl >/dev/null; }
	@command -v promtool >/dev/null || { SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends \
	  prometheus >/dev/null; }

TEST_CLIENTS := graphql-ws browser federation
test-clients: $(TEST_CLIENTS:%=tests/clients/%/node_modules/.installed) chromium

lint: setup
	$(BIN)/ruff check cityos tests migrations bench
	$(BIN)/mypy
	$(BIN)/lint-imports

policy-test: setup
	$(CERBOS) compile policies/

pytest: setup redis-server test-clients ops-tools
	$(BIN)/pytest

test: setup redis-server lint policy-test pytest

schema: setup
	$(BIN)/cityos schema export

clean:
	rm -rf $(VENV) node_modules web/graphiql/node_modules tests/clients/*/node_modules .pytest_cache .mypy_cache .ruff_cache

# The benchmark against PostGraphile (installs wrk from Debian and PostGraphile from npm; writes bench/results/).
bench: setup
	@command -v wrk >/dev/null || { SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq wrk >/dev/null; }
	cd bench/postgraphile && npm ci --no-audit --no-fund --loglevel=error
	$(BIN)/pip install --quiet py-spy
	$(BIN)/python -m bench.run --profile
