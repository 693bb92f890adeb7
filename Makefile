PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test lint unit bench wheel clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev,serve]'
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/python scripts/demo.py

lint: $(STAMP)
	$(BIN)/ruff check recsys tests scripts
	$(BIN)/mypy recsys

unit: $(STAMP)
	$(BIN)/pytest -q -m "not slow"

test: lint
	$(BIN)/pytest -q

bench: $(STAMP)
	for b in scripts/bench_*.py; do $(BIN)/python $$b || exit 1; done

wheel: $(STAMP)
	$(BIN)/pip wheel --no-deps --no-build-isolation -w dist .

clean:
	rm -rf outputs build dist .pytest_cache .mypy_cache .ruff_cache
