"""Liveness needs nothing; readiness needs the database, in time, at the schema's head."""

import asyncio
from collections import Counter
from pathlib import Path

import pytest

from app.main import create_app
from tests.databases import (
    Database,
    Template,
    engine_of,
    make_settings,
    migrate,
    serve,
    unreachable,
)
from tests.servers import APP, concurrent_gets, production_env, serving


async def test_live_and_ready_when_all_is_well(database: Database) -> None:
    async with serve(create_app(make_settings(database.url))) as client:
        for path in ("/health/live", "/health/ready", "/health"):
            response = await client.get(path)
            assert response.status_code == 200, path
            assert response.json() == {"status": "ok"}


async def test_ready_says_why_not(database: Database, template: Template) -> None:
    async with serve(create_app(make_settings(unreachable(database)))) as client:
        assert (await client.get("/health/live")).status_code == 200  # no I/O
        for path in ("/health/ready", "/health"):
            response = await client.get(path)
            assert response.status_code == 503
            assert response.headers["retry-after"]
            assert "unreachable" in response.json()["detail"]

    empty = await template.empty()
    async with serve(create_app(make_settings(empty))) as client:
        response = await client.get("/health/ready")
        assert response.status_code == 503
        assert "run the migrations" in response.json()["detail"]

    behind = await template.empty()
    await asyncio.to_thread(migrate, behind, "upgrade", "0002")
    async with serve(create_app(make_settings(behind))) as client:
        response = await client.get("/health/ready")
        assert response.status_code == 503
        assert "revision 0002" in response.json()["detail"]


async def test_ready_answers_at_once_when_the_request_pool_is_exhausted(
    database: Database,
) -> None:
    # A check that waited for the pool would wait for its timeout, past its own:
    # it would answer 503. Its own timeout is generous, for a busy machine.
    settings = make_settings(
        database.url, db_pool_size=1, db_max_overflow=0, db_pool_timeout=60, health_timeout=10
    )
    app = create_app(settings)
    async with serve(app) as client:
        async with engine_of(app).connect() as held:  # the pool's only connection
            await held.exec_driver_sql("SELECT 1")
            response = await client.get("/health/ready")
        assert response.status_code == 200, response.text


def _pgbouncer_only(database: Database) -> None:
    if database.backend != "pgbouncer":
        pytest.skip("PgBouncer only: set TEST_PGBOUNCER_URL (.ci/pgbouncer start)")


# Behind PgBouncer in transaction mode, the checks of several processes share a few
# server connections. asyncpg numbers its named prepared statements per process, so
# two processes' statements of the same name met there ("already exists"), and the
# check answered 503. Each process here starts its numbering afresh, as in production.
# The timeouts are generous: these tests are about wrong answers, not a busy machine.


def test_concurrent_readiness_checks_of_two_processes(database: Database, tmp_path: Path) -> None:
    _pgbouncer_only(database)
    env = production_env(database.url, DB_PGBOUNCER="true", HEALTH_TIMEOUT="30")
    with serving(env, tmp_path) as one, serving(env, tmp_path) as two:

        async def both() -> list[list[int]]:
            return await asyncio.gather(
                *(concurrent_gets(server.url, "/health/ready", 200) for server in (one, two))
            )

        statuses = [status for wave in asyncio.run(both()) for status in wave]
    assert Counter(statuses) == {200: 400}


async def test_concurrent_app_checks(database: Database, tmp_path: Path) -> None:
    _pgbouncer_only(database)
    env = database.environment() | {"HEALTH_TIMEOUT": "30"}

    async def app_check() -> tuple[int | None, str, str]:
        process = await asyncio.create_subprocess_exec(
            APP,
            "check",
            cwd=tmp_path,  # no .env there
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        output, errors = await process.communicate()
        return process.returncode, output.decode(), errors.decode()

    outcomes = await asyncio.gather(*(app_check() for _ in range(8)))
    for code, output, errors in outcomes:
        assert (code, output.split(":")[0]) == (0, "ready"), (output, errors)
