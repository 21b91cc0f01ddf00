# The two commands a newcomer types: `make run` and `make test`.
# Both create .venv and install the project (and its dev tools) on first use.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: install run migrate test lint format typecheck fuzz bench clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
		|| { echo "Python 3.11+ is required ($(PYTHON) is $$($(PYTHON) -V))"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

install: $(STAMP)

# Apply the migrations to DATABASE_URL (default: ./app.db), then serve on HOST:PORT:
# the `app` command, as the image and docker compose run it.
run: migrate
	$(BIN)/app serve

migrate: install
	$(BIN)/app migrate

# Lint, types, then the suite: SQLite always, PostgreSQL too when TEST_DATABASE_URL is set.
test: lint typecheck
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

typecheck: install
	$(BIN)/mypy

# schemathesis against `python -m app` on a fresh PostgreSQL database (FUZZ_DATABASE_URL or
# TEST_DATABASE_URL names the server; default postgres@127.0.0.1:5432): see tests/fuzz/run.py.
fuzz: install
	$(BIN)/python -m tests.fuzz.run

# Load figures on the local PostgreSQL (PG, default postgresql://postgres@127.0.0.1:5432):
# GET/POST throughput beside the seed app and the bare-asyncpg ceiling, sign-ups
# under load, keyset vs offset pages, memory. Needs wrk (installed from apt if missing).
bench: install
	@command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; } \
		|| { echo "bench needs wrk: apt-get install -y wrk"; exit 1; }
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .coverage fuzz-report
