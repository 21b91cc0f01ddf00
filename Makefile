# The two commands a newcomer types: `make run` and `make test`.
# Both install into .venv, from uv.lock, what they need on first use: `make run` the
# service alone, `make test` the service and the dev tools (the `dev` group).

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# uv installs .venv from uv.lock. It is pinned: a venv of its own (.tools), from PyPI,
# made on first use. The Dockerfile pins the same version.
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
UV_STAMP := $(TOOLS)/.uv-$(UV_VERSION)
# --locked: exactly what uv.lock says, and a refusal when pyproject.toml has moved on
# without it (then `make lock`). --compile-bytecode: compiled once here, not at every start
# (where PYTHONDONTWRITEBYTECODE is set, each process would compile all it imports, and
# `app serve --workers N` would start its workers several times slower).
SYNC := $(UV) sync --locked --compile-bytecode
export UV_PROJECT_ENVIRONMENT := $(VENV)
export UV_PYTHON := $(PYTHON)
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: install runtime run migrate test lint format typecheck client chromium prometheus pgbouncer \
	haproxy fuzz \
	bench lock lock-check upgrade clean

# $(call apt_install,PACKAGES): a shell command installing Debian packages from apt, as root
# or through sudo without a password; it fails when neither may.
apt_install = { if [ "$$(id -u)" = 0 ]; then sudo=; else sudo="sudo -n"; fi; \
	$$sudo apt-get update -qq \
	&& DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq $(1) >/dev/null; }

$(UV_STAMP):
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
		|| { echo "Python 3.11+ is required ($(PYTHON) is $$($(PYTHON) -V))"; exit 1; }
	rm -rf $(TOOLS)
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet uv==$(UV_VERSION)
	@touch $@

# The project (editable) and the dev group: what `make test`, `make lint`... run on.
install: $(UV_STAMP)
	$(SYNC)

# What running needs and no more. --inexact: the dev tools stay if `make test` put them there.
runtime: $(UV_STAMP)
	$(SYNC) --no-dev --inexact

# Apply the migrations to DATABASE_URL (default: ./app.db), then serve on HOST:PORT:
# the `app` command, as the image and docker compose run it.
run: migrate
	$(BIN)/app serve

migrate: runtime
	$(BIN)/app migrate

# Lint, types, then the suite: SQLite always, PostgreSQL too when TEST_DATABASE_URL is set.
test: lint typecheck chromium prometheus pgbouncer haproxy
	$(BIN)/pytest

# The browser tests need a headless Chromium: Debian's chromium-headless-shell (the browser
# alone, without its desktop: no recommended packages) is installed from apt when no
# Chromium is there and apt may be used (as root, or through sudo without a password). If it
# cannot be, the browser tests fail and say how to get it (or SKIP_BROWSER_TESTS=1 skips
# them; CHROMIUM names another binary).
chromium:
	@if [ -z "$$SKIP_BROWSER_TESTS" ] && [ -z "$$CHROMIUM" ] \
		&& ! command -v chromium-headless-shell >/dev/null && ! command -v chromium >/dev/null; then \
		echo "installing chromium-headless-shell from apt, for the browser tests of /docs and /redoc"; \
		$(call apt_install,--no-install-recommends chromium-headless-shell) \
			|| echo "could not install chromium-headless-shell; the browser tests will say what to do"; \
	fi

# The dashboard's queries are tested against a real Prometheus (tests/test_dashboard.py):
# Debian's, installed from apt when it is missing, as chromium is (without the node exporter
# it recommends). SKIP_PROMETHEUS_TESTS=1 skips that test; PROMETHEUS names another binary.
prometheus:
	@if [ -z "$$SKIP_PROMETHEUS_TESTS" ] && [ -z "$$PROMETHEUS" ] && ! command -v prometheus >/dev/null; then \
		echo "installing prometheus from apt, for the test of the Grafana dashboard's queries"; \
		$(call apt_install,--no-install-recommends prometheus) || echo "could not install prometheus; the dashboard test will say what to do"; \
	fi

# The read-replica tests run PgBouncer in front of a primary and its replica
# (tests/test_replicas.py): Debian's, installed from apt when it is missing, as chromium is.
pgbouncer:
	@if ! command -v pgbouncer >/dev/null && [ ! -x /usr/sbin/pgbouncer ]; then \
		echo "installing pgbouncer from apt, for the tests of reads from replicas through it"; \
		$(call apt_install,--no-install-recommends pgbouncer) || echo "could not install pgbouncer; its test will say what to do"; \
	fi

# Several app processes behind HAProxy, configured by deploy/haproxy.cfg, are tested for real
# (tests/test_haproxy.py), and the file is checked with `haproxy -c`: Debian's HAProxy (2.6),
# installed from apt when it is missing, as prometheus is. SKIP_HAPROXY_TESTS=1 skips those
# tests; HAPROXY names another binary. `make bench` uses it too.
haproxy:
	@if [ -z "$$SKIP_HAPROXY_TESTS" ] && [ -z "$$HAPROXY" ] \
		&& ! command -v haproxy >/dev/null && [ ! -x /usr/sbin/haproxy ]; then \
		echo "installing haproxy from apt, for the tests of several processes behind it"; \
		$(call apt_install,--no-install-recommends haproxy) || echo "could not install haproxy; the HAProxy tests will say what to do"; \
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
# under load, keyset vs offset pages, memory; GET /users/{id} through HAProxy in front of
# one and two processes. Needs wrk and haproxy (installed from apt if missing).
bench: $(UV_STAMP) haproxy
	@command -v wrk >/dev/null || $(call apt_install,wrk) \
		|| { echo "bench needs wrk: apt-get install -y wrk"; exit 1; }
	$(SYNC) --group bench --inexact
	$(BIN)/python bench/run.py

# uv.lock again after a change to pyproject.toml's dependencies: what is locked stays where
# it is, as far as the change allows.
lock: $(UV_STAMP)
	$(UV) lock

# Fails when pyproject.toml and uv.lock disagree (CI runs it).
lock-check: $(UV_STAMP)
	$(UV) lock --check

# Every dependency to its newest release that pyproject.toml allows: review uv's list of
# changes, run `make test`, commit uv.lock.
upgrade: $(UV_STAMP)
	$(UV) lock --upgrade

clean:
	rm -rf $(VENV) $(TOOLS) .pytest_cache .mypy_cache .ruff_cache .coverage fuzz-report
