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

import asyncio
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy import inspect, make_url, text
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db import create_engine
from app.main import create_app
from app.settings import Settings

PROJECT_ROOT = Path(__file__).resolve().parent.parent
TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "")
BACKENDS = ["sqlite"] + (["postgresql"] if TEST_DATABASE_URL else [])


def pytest_configure(config: pytest.Config) -> None:
    # CI sets REQUIRE_POSTGRES=1: a run without PostgreSQL must not pass as green.
    if os.environ.get("REQUIRE_POSTGRES") == "1" and not TEST_DATABASE_URL:
        raise pytest.UsageError("REQUIRE_POSTGRES=1 but TEST_DATABASE_URL is not set")


def pytest_report_header() -> str:
    where = make_url(TEST_DATABASE_URL).render_as_string() if TEST_DATABASE_URL else ""
    return f"databases: {', '.join(BACKENDS)} {where}".rstrip()


def run_alembic(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the alembic CLI exactly as `make run` and docker compose do."""
    env = {**os.environ, "DATABASE_URL": database_url}
    return subprocess.run(  # noqa: S603 - fixed command line
        [sys.executable, "-m", "alembic", *args],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def migrate(database_url: str, *args: str) -> None:
    result = run_alembic(database_url, *(args or ("upgrade", "head")))
    assert result.returncode == 0, result.stderr


def _run_coroutine(factory: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
    # Session fixtures run outside the tests' event loops; a private loop in a
    # private thread leaves pytest-asyncio's loop alone.
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, factory()).result()


@dataclass
class PostgresServer:
    url: str  # SQLAlchemy URL of the server, as given in TEST_DATABASE_URL
    created: list[str] = field(default_factory=list)

    def url_for(self, database: str) -> str:
        return make_url(self.url).set(database=database).render_as_string(hide_password=False)

    def _dsn(self) -> str:
        return make_url(self.url).set(drivername="postgresql").render_as_string(hide_password=False)

    async def create(self, template: str | None = None) -> str:
        name = f"app_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        connection = await asyncpg.connect(self._dsn())
        try:
            clause = f' TEMPLATE "{template}"' if template else ""
            await connection.execute(f'CREATE DATABASE "{name}"{clause}')
        finally:
            await connection.close()
        self.created.append(name)
        return name

    async def drop_created(self, at_once: int = 8) -> None:
        async def drop(names: list[str]) -> None:
            connection = await asyncpg.connect(self._dsn())
            try:
                for name in names:
                    await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            finally:
                await connection.close()

        # The template goes last: the copies were made from it.
        copies, template = self.created[1:], self.created[:1]
        await asyncio.gather(*(drop(copies[i::at_once]) for i in range(at_once)))
        await drop(template)


@dataclass
class Database:
    """A migrated database of the test's own, for looking behind the API's back.

    Connections come from the app's engine factory, so SQLite enforces foreign
    keys here exactly as it does for the app.
    """

    backend: str
    url: str

    @asynccontextmanager
    async def _connect(self) -> AsyncIterator[AsyncConnection]:
        engine = create_engine(make_settings(self.url))
        try:
            async with engine.begin() as connection:
                yield connection
        finally:
            await engine.dispose()

    async def execute(self, *statements: str, **params: Any) -> None:
        async with self._connect() as connection:
            for statement in statements:
                await connection.execute(text(statement), params)

    async def scalar(self, query: str, **params: Any) -> Any:
        async with self._connect() as connection:
            return (await connection.execute(text(query), params)).scalar()

    async def column(self, query: str, **params: Any) -> list[Any]:
        async with self._connect() as connection:
            return list((await connection.execute(text(query), params)).scalars())

    async def tables(self) -> set[str]:
        async with self._connect() as connection:
            return set(await connection.run_sync(lambda c: inspect(c).get_table_names()))


@dataclass
class Template:
    """Where fresh databases for one backend come from."""

    backend: str
    tmp: Path
    server: PostgresServer | None = None
    name: str = ""

    def fresh_sqlite_url(self) -> str:
        return f"sqlite+aiosqlite:///{self.tmp / f'{uuid.uuid4().hex}.db'}"

    async def empty(self) -> str:
        """The URL of a new database with nothing in it."""
        if self.server is None:
            return self.fresh_sqlite_url()
        return self.server.url_for(await self.server.create())

    async def copy(self) -> Database:
        if self.server is None:
            url = self.fresh_sqlite_url()
            shutil.copyfile(self.tmp / "template.db", make_url(url).database or "")
        else:
            url = self.server.url_for(await self.server.create(template=self.name))
        return Database(self.backend, url)


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
        name = _run_coroutine(server.create)
        migrate(server.url_for(name))
        yield Template(backend, tmp, server, name)
    finally:
        _run_coroutine(server.drop_created)


@pytest.fixture
async def database(template: Template) -> Database:
    return await template.copy()


def make_settings(database_url: str, *, real_hashing: bool = False, **overrides: Any) -> Settings:
    options: dict[str, Any] = {"environment": "test", "database_url": database_url}
    if not real_hashing:
        # Cheap hashing keeps the suite fast; the production parameters are used
        # where the cost of hashing is what a test is about.
        options.update(
            password_hash_time_cost=1, password_hash_memory_cost=8, password_hash_concurrency=4
        )
    options.update(overrides)
    return Settings(_env_file=None, **options)


@pytest.fixture
def settings(database: Database) -> Settings:
    return make_settings(database.url)


@asynccontextmanager
async def serve(app: FastAPI, *, raise_app_exceptions: bool = True) -> AsyncIterator[AsyncClient]:
    """Run the app as a server does (lifespan included); yield a client speaking HTTP to it."""
    transport = ASGITransport(app=app, raise_app_exceptions=raise_app_exceptions)
    async with (
        LifespanManager(app),
        AsyncClient(transport=transport, base_url="http://test") as client,
    ):
        yield client
        # Whatever the test did, every connection went back to the pool.
        assert app.state.engine.pool.checkedout() == 0


@pytest.fixture
def app(settings: Settings) -> FastAPI:
    return create_app(settings)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[AsyncClient]:
    async with serve(app) as client:
        yield client
