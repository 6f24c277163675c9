# Two commands on a fresh clone: `make run` and `make test`. Both create .venv and install into it.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test install lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

## Start the server on an embedded SQLite database with the demo catalog (http://127.0.0.1:8000).
run: $(STAMP)
	$(BIN)/tierkit dev

## Run the whole suite on every core (set TIERKIT_TEST_DATABASE_URL to also run it on PostgreSQL).
test: $(STAMP)
	$(BIN)/python -m pytest -n auto $(PYTEST_ARGS)

## The static checks CI runs.
lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy src
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) tierkit.db tierkit.db-wal tierkit.db-shm tierkit.db.secret-key .tierkit .pytest_cache .mypy_cache .ruff_cache
