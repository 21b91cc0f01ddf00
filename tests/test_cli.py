"""The `app` command as an operator runs it: what it prints, and how it exits."""

import os
import subprocess
import sys
import uuid

import pytest
from sqlalchemy import make_url

from tests.databases import PROJECT_ROOT, TEST_DATABASE_URL, Database, unreachable
from tests.servers import app_command


async def test_a_command_that_succeeds_prints_its_result_alone(database: Database) -> None:
    finished = await app_command(database.environment(), "purge-idempotency-keys")
    assert finished.status == 0, finished.err
    assert finished.out.startswith("purged ")
    # SQLAlchemy's pool says "Pool disposed ... Current Overflow: -10" at every exit.
    assert "Pool" not in finished.err, finished.err


# The pool's own logger, configured as every command and the service configure it.
_POOL_LOGGER = """
import sys
from app.platform.engine import create_engine
from app.platform.logs import configure_logging
from app.platform.settings import Settings

settings = Settings(_env_file=None, database_url=sys.argv[1])
configure_logging(settings, stream=sys.stderr)
pool = create_engine(settings).pool
pool.logger.info("pool chatter")
pool.logger.warning("a pool warning")
"""


def test_the_pools_warnings_still_reach_the_log(database: Database) -> None:
    finished = subprocess.run(  # noqa: S603 - fixed command line
        [sys.executable, "-c", _POOL_LOGGER, database.url],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert "a pool warning" in finished.stderr
    assert "pool chatter" not in finished.stderr


def _one_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1, err  # no traceback, no log line beside it
    return lines[0]


# DATABASE_URLs the service cannot use, and what the refusal says to use instead.
REFUSED_URLS = {
    "postgresql://app:pa55word@db:5432/app": "use postgresql+asyncpg://, not postgresql://",
    "postgres://app@db/app": "use postgresql+asyncpg://, not postgres://",
    "postgresql+psycopg2://app@db/app": "use postgresql+asyncpg://, not postgresql+psycopg2://",
    "sqlite:///app.db": "use sqlite+aiosqlite://, not sqlite://",
    "mysql+aiomysql://app@db/app": "use postgresql+asyncpg:// (PostgreSQL) or sqlite+aiosqlite://",
    "app.db": "not a database URL: use postgresql+asyncpg://",
}


@pytest.mark.parametrize("url", REFUSED_URLS)
async def test_a_database_url_without_an_async_driver_is_refused_in_one_line(url: str) -> None:
    env = {**os.environ, "DATABASE_URL": url}
    # Every verb reads the settings first; `serve` included, it refuses to start.
    verbs = (["check"], ["migrate"], ["serve"]) if url.startswith("postgresql:") else (["check"],)
    for verb in verbs:
        finished = await app_command(env, *verb)
        assert finished.status != 0
        line = _one_line(finished.err)
        assert line.startswith("invalid settings: database_url: "), line
        assert REFUSED_URLS[url] in line, line
        assert "pa55word" not in line  # nothing of the URL but its scheme


async def test_an_unreachable_database_is_one_line_and_a_failure(database: Database) -> None:
    env = {**database.environment(), "DATABASE_URL": unreachable(database)}
    # A missing directory for SQLite; a closed port for PostgreSQL.
    reason = {
        "sqlite": "OperationalError unable to open database file",
        "postgresql": "ConnectionRefusedError",
    }[database.dialect]
    for verb in (
        ["check"],
        ["migrate"],
        ["purge-idempotency-keys"],
        ["activate-user", "someone@example.com"],
    ):
        finished = await app_command(env, *verb)
        assert finished.status != 0, verb
        line = _one_line(finished.err)
        prefix = "not ready: " if verb == ["check"] else f"{verb[0]}: database error: "
        assert line.startswith(prefix), line
        assert reason in line, line


@pytest.mark.skipif(not TEST_DATABASE_URL, reason="needs PostgreSQL: set TEST_DATABASE_URL")
async def test_a_missing_postgresql_database_is_named() -> None:
    missing = f"app_test_missing_{uuid.uuid4().hex[:8]}"
    url = make_url(TEST_DATABASE_URL).set(database=missing)
    env = {**os.environ, "DATABASE_URL": url.render_as_string(hide_password=False)}
    for verb in ("check", "migrate"):
        finished = await app_command(env, verb)
        assert finished.status != 0, verb
        line = _one_line(finished.err)
        assert f'database "{missing}" does not exist' in line, line
