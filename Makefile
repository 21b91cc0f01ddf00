# The two commands a newcomer types: `make run` and `make test`.
# Both create .venv and install the project (and its dev tools) on first use.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: install run migrate test lint format typecheck client chromium fuzz bench clean

# $(call apt_install,PACKAGE): a shell command installing a Debian package from apt, as root
# or through sudo without a password; it fails when neither may.
apt_install = { if [ "$$(id -u)" = 0 ]; then sudo=; else sudo="sudo -n"; fi; \
	$$sudo apt-get update -qq \
	&& DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq $(1) >/dev/null; }

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
test: lint typecheck chromium
	$(BIN)/pytest

# The browser tests need Chromium: installed from apt when it is missing and apt may be used
# (as root, or through sudo without a password). If it cannot be, the browser tests fail and
# say how to get it (or SKIP_BROWSER_TESTS=1 skips them; CHROMIUM names another binary).
chromium:
	@if [ -z "$$SKIP_BROWSER_TESTS" ] && [ -z "$$CHROMIUM" ] && ! command -v chromium >/dev/null; then \
		echo "installing chromium from apt, for the browser tests of /docs and /redoc"; \
		$(call apt_install,chromium) || echo "could not install chromium; the browser tests will say what to do"; \
	fi

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

typecheck: install
	$(BIN)/mypy

# Regenerate the Python client in clients/python from the app's OpenAPI document, after a
# change of the API (the suite fails while the committed one is stale): see tests/clients.py.
client: install
	$(BIN)/python -m tests.clients

# schemathesis against `python -m app` on a fresh PostgreSQL database (FUZZ_DATABASE_URL or
# TEST_DATABASE_URL names the server; default postgres@127.0.0.1:5432): see tests/fuzz/run.py.
fuzz: install
	$(BIN)/python -m tests.fuzz.run

# Load figures on the local PostgreSQL (PG, default postgresql://postgres@127.0.0.1:5432):
# GET/POST throughput beside the seed app and the bare-asyncpg ceiling, sign-ups
# under load, keyset vs offset pages, memory. Needs wrk (installed from apt if missing).
bench: install
	@command -v wrk >/dev/null || $(call apt_install,wrk) \
		|| { echo "bench needs wrk: apt-get install -y wrk"; exit 1; }
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .coverage fuzz-report
