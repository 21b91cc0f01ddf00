"""One fixture set. The `database` fixture decides where a test runs.

Every test runs on SQLite, and also on PostgreSQL when TEST_DATABASE_URL names a
server (e.g. postgresql+asyncpg://postgres@127.0.0.1:5432/postgres) on which the
tests may create and drop databases; the database it names is only connected to.
If it is set and the server cannot be reached, the PostgreSQL tests fail; with
REQUIRE_POSTGRES=1 (as CI runs), leaving it unset is an error too.

The schema comes from the migrations (`alembic upgrade head`, the command the
deployment runs), once per backend into a template; each test then gets its own
copy of that template, so tests can commit, race and even add triggers freely.
"""

import os
from collections.abc import AsyncIterator, Iterator

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import make_url

from app.main import create_app
from app.platform.settings import Settings
from tests.databases import (
    BACKENDS,
    TEST_DATABASE_URL,
    TEST_PGBOUNCER_URL,
    Database,
    PostgresServer,
    Template,
    make_settings,
    migrate,
    run_coroutine,
    serve,
)


def pytest_configure(config: pytest.Config) -> None:
    # CI sets REQUIRE_POSTGRES=1: a run without PostgreSQL must not pass as green.
    if os.environ.get("REQUIRE_POSTGRES") == "1" and not TEST_DATABASE_URL:
        raise pytest.UsageError("REQUIRE_POSTGRES=1 but TEST_DATABASE_URL is not set")


def pytest_report_header() -> str:
    where = [
        make_url(url).render_as_string() for url in (TEST_DATABASE_URL, TEST_PGBOUNCER_URL) if url
    ]
    return f"databases: {', '.join(BACKENDS)} {' '.join(where)}".rstrip()


@pytest.fixture(scope="session", params=BACKENDS)
def template(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Template]:
    backend: str = request.param
    tmp = tmp_path_factory.mktemp(backend)
    if backend == "sqlite":
        migrate(f"sqlite+aiosqlite:///{tmp / 'template.db'}")
        yield Template(backend, tmp)
        return
    server = PostgresServer(TEST_DATABASE_URL)
    try:
        name = run_coroutine(server.create)
        migrate(server.url_for(name))
        yield Template(backend, tmp, server, name)
    finally:
        run_coroutine(server.drop_created)


@pytest.fixture
async def database(template: Template) -> Database:
    return await template.copy()


@pytest.fixture
def settings(database: Database) -> Settings:
    return make_settings(database.url)


@pytest.fixture
def app(settings: Settings) -> FastAPI:
    return create_app(settings)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[AsyncClient]:
    async with serve(app) as client:
        yield client
