# Every target does its own setup: a fresh machine needs only Python 3.11+.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PKGS   := tikvops bot engine operator_tikv storage diagnosis sim slackfake

LOCK   := requirements-dev.lock
COMPILE = $(BIN)/uv pip compile pyproject.toml --universal --python-version 3.11 --quiet

.PHONY: install test check demo lint format clean bench lock

# Installs exactly the versions in the lock file, then our package without resolving anything;
# `pip check` fails when pyproject.toml asks for something the lock does not hold (run make lock).
$(STAMP): pyproject.toml requirements.lock $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps -e .
	$(BIN)/python -m pip check
	touch $(STAMP)

install: $(STAMP)

check: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/deptry .

test: check
	$(BIN)/python -m pytest $(PYTEST_ARGS)

demo: $(STAMP)
	$(BIN)/tikvops demo $(DEMO_ARGS)

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP)
	$(BIN)/python bench/run_all.py

# Re-resolve both lock files from pyproject.toml (uv, installed into the venv with pip).
lock:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet uv
	$(COMPILE) -o requirements.lock
	$(COMPILE) --extra dev -o $(LOCK)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
