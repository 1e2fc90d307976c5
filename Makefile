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

pytest: $(VENV)/.stamp-all
	$(BIN)/python -m pytest -q

test: lint typecheck pytest

# checkov on the rendered staging + prod manifests (its own .venv-checkov: its pins clash with ours).
# pytest runs the same scan on prod (tests/infra/workloads/test_manifests.py), so `make test` covers it.
checkov: $(VENV)/.stamp-infra
	bash scripts/checkov.sh

local: $(VENV)/.stamp-all
	$(BIN)/python -m app.local

clean:
	rm -rf build .pytest_cache .mypy_cache .ruff_cache
