# The two set-up commands a newcomer needs (README): `make preview STACK=dev` and `make test`.
# Both create .venv and install what they need on first use; the stamps re-install when pyproject.toml changes.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STACK ?= dev
FORMAT ?= table
PIP := $(BIN)/python -m pip install --quiet --disable-pip-version-check

.PHONY: setup preview manifests test lint typecheck pytest checkov local clean
.PHONY: frontend-install frontend-test chromium clamav

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) --upgrade pip

# infra only: the offline preview never installs torch or the app's dependencies.
$(VENV)/.stamp-infra: pyproject.toml | $(BIN)/python
	$(PIP) -e '.[infra]'
	touch $@

# Everything the test suite touches. torch==2.13.0 resolves to the local CPU wheel in this environment.
$(VENV)/.stamp-all: pyproject.toml | $(BIN)/python
	$(PIP) -e '.[infra,app,embedder,dev]'
	touch $@ $(VENV)/.stamp-infra

setup: $(VENV)/.stamp-all

preview: $(VENV)/.stamp-infra
	$(BIN)/python -m stacks preview $(STACK) --format $(FORMAT)

manifests: $(VENV)/.stamp-infra
	$(BIN)/python -m stacks manifests $(STACK) --out build/manifests/$(STACK)

lint: $(VENV)/.stamp-all
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.stamp-all
	$(BIN)/mypy infra stacks policies app

pytest: $(VENV)/.stamp-all clamav
	$(BIN)/python -m pytest -q

# The frontend's suites run before pytest, so pytest's summary stays the last line of `make test`.
test: lint typecheck frontend-test pytest

# Node packages from the lock file only (npm ci); the stamp re-installs when the lock changes. Browser downloads are
# impossible here: the e2e suite drives the system's chromium.
frontend/node_modules/.stamp: frontend/package-lock.json
	@command -v npm >/dev/null 2>&1 || { echo "npm not found: install Node.js 20.19+ or 22 LTS (frontend/.nvmrc)"; exit 1; }
	cd frontend && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund
	touch $@

frontend-install: frontend/node_modules/.stamp

# Debian's chromium for the e2e suite, installed with apt when missing (as root: CI and these machines).
chromium:
	@command -v "$${CHROMIUM:-chromium}" >/dev/null 2>&1 || { \
	  [ "$$(id -u)" = 0 ] || { echo "chromium not found: apt-get install chromium"; exit 1; }; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null; }

# Debian's clamd (and clamconf) for the malware-scan tests, installed with apt when missing (as root): the tests
# start it with their own EICAR signature (tests/app/clamd_support.py); no signature download is ever needed.
clamav:
	@{ command -v clamd || [ -x /usr/sbin/clamd ]; } >/dev/null 2>&1 || { \
	  [ "$$(id -u)" = 0 ] || { echo "clamd not found: apt-get install clamav-daemon"; exit 1; }; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends clamav-daemon >/dev/null; }

# Lint, type-check and unit tests, then the e2e suite in headless chromium against `python -m app.local`.
frontend-test: $(VENV)/.stamp-all frontend-install chromium
	cd frontend && npm run --silent lint && npm run --silent typecheck && npm test
	cd frontend && npm run --silent test:e2e

# checkov on the rendered staging + prod manifests (its own .venv-checkov: its pins clash with ours).
# pytest runs the same scan on prod (tests/infra/workloads/test_manifests.py), so `make test` covers it.
checkov: $(VENV)/.stamp-infra
	bash scripts/checkov.sh

local: $(VENV)/.stamp-all frontend-install
	$(BIN)/python -m app.local

clean:
	rm -rf build .pytest_cache .mypy_cache .ruff_cache
