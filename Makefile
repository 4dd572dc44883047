# idgov: the two commands a new user needs are `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev

.PHONY: run test test-fast lint bench install clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(STAMP): pyproject.toml $(VENV)/bin/python
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## make run: set everything up and serve the demo on the embedded database.
run: $(STAMP)
	$(BIN)/idgov init
	$(BIN)/idgov demo
	$(BIN)/idgov serve

## make lint: ruff, mypy and the import contracts.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

## make test: the whole suite on SQLite and PostgreSQL, with lint, types and contracts.
test: lint
	$(BIN)/pytest

## make test-fast: the suite on SQLite only, for iterating.
test-fast: $(STAMP)
	IDGOV_TEST_BACKENDS=sqlite $(BIN)/pytest -x -q

## make bench: every workload under benchmarks/ at full scale (long: run it in the background).
bench: $(STAMP)
	@set -e; for script in benchmarks/*.py; do \
		[ -e "$$script" ] || continue; \
		echo "== $$script"; $(BIN)/python $$script; \
	done

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
