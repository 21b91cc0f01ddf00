"""The databases, apps and settings the tests run on (the fixtures are in conftest.py)."""

import asyncio
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import asyncpg
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy import inspect, make_url, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.pool import QueuePool

from app.api.dependencies import state_of
from app.platform.engine import create_engine
from app.platform.settings import Settings

PROJECT_ROOT = Path(__file__).resolve().parent.parent
TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "")
# PgBouncer (transaction mode) in front of TEST_DATABASE_URL's server: the app's
# connections go through it; the tests' own set-up goes to the server directly.
TEST_PGBOUNCER_URL = os.environ.get("TEST_PGBOUNCER_URL", "")
BACKENDS = (
    ["sqlite"]
    + (["postgresql"] if TEST_DATABASE_URL else [])
    + (["pgbouncer"] if TEST_DATABASE_URL and TEST_PGBOUNCER_URL else [])
)


def run_alembic(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the alembic CLI with the project's alembic.ini (`app migrate`, which `make run`
    and docker compose run, applies the same migrations)."""
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


def run_coroutine(factory: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
    # Session fixtures run outside the tests' event loops; a private loop in a
    # private thread leaves pytest-asyncio's loop alone.
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, factory()).result()


def dsn(database_url: str) -> str:
    """The database's URL as asyncpg takes it."""
    url = make_url(database_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


@dataclass
class PostgresServer:
    url: str  # SQLAlchemy URL of the server, as given in TEST_DATABASE_URL
    created: list[str] = field(default_factory=list)

    def url_for(self, database: str) -> str:
        return make_url(self.url).set(database=database).render_as_string(hide_password=False)

    async def create(self, template: str | None = None, prefix: str = "app_test") -> str:
        name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        connection = await asyncpg.connect(dsn(self.url))
        try:
            clause = f' TEMPLATE "{template}"' if template else ""
            await connection.execute(f'CREATE DATABASE "{name}"{clause}')
        finally:
            await connection.close()
        self.created.append(name)
        return name

    async def drop_created(self, at_once: int = 8) -> None:
        async def drop(names: list[str]) -> None:
            connection = await asyncpg.connect(dsn(self.url))
            try:
                for name in names:
                    await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            finally:
                await connection.close()

        # The template goes last: the copies were made from it.
        copies, template = self.created[1:], self.created[:1]
        await asyncio.gather(*(drop(copies[i::at_once]) for i in range(at_once)))
        await drop(template)


@contextmanager
def postgres_account(server_url: str, password: str) -> Iterator[tuple[str, str]]:
    """A new login role with this password, owning a new empty database, on the server of
    `server_url` (as the postgres image makes POSTGRES_USER and POSTGRES_DB); both are
    dropped afterwards. Yields (role, database)."""
    suffix = f"{os.getpid()}_{uuid.uuid4().hex[:8]}"
    role, database = f"app_test_role_{suffix}", f"app_test_{suffix}"
    server_dsn = dsn(server_url)
    quoted = password.replace("'", "''")

    async def execute(*statements: str) -> None:
        connection = await asyncpg.connect(server_dsn)
        try:
            for statement in statements:
                await connection.execute(statement)
        finally:
            await connection.close()

    run_coroutine(
        lambda: execute(
            f"CREATE ROLE \"{role}\" LOGIN PASSWORD '{quoted}'",
            f'CREATE DATABASE "{database}" OWNER "{role}"',
        )
    )
    try:
        yield role, database
    finally:
        run_coroutine(
            lambda: execute(
                f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)',
                f'DROP ROLE IF EXISTS "{role}"',
            )
        )


@dataclass
class Database:
    """A migrated database of the test's own, for looking behind the API's back.

    Connections come from the app's engine factory, so SQLite enforces foreign
    keys here exactly as it does for the app.
    """

    backend: str
    url: str

    @property
    def dialect(self) -> str:
        return "sqlite" if self.backend == "sqlite" else "postgresql"

    def environment(self) -> dict[str, str]:
        """The environment of a command (the app, its CLI) using this database."""
        pgbouncer = {"DB_PGBOUNCER": "true"} if self.backend == "pgbouncer" else {}
        return {**os.environ, "DATABASE_URL": self.url, **pgbouncer}

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
            return Database(self.backend, url)
        name = await self.server.create(template=self.name)
        if self.backend == "pgbouncer":
            through = make_url(TEST_PGBOUNCER_URL).set(database=name)
            return Database(self.backend, through.render_as_string(hide_password=False))
        return Database(self.backend, self.server.url_for(name))


def make_settings(database_url: str, *, real_hashing: bool = False, **overrides: Any) -> Settings:
    options: dict[str, Any] = {"environment": "test", "database_url": database_url}
    if not real_hashing:
        # Cheap hashing keeps the suite fast; the production parameters are used
        # where the cost of hashing is what a test is about.
        options.update(
            password_hash_time_cost=1, password_hash_memory_cost=8, password_hash_concurrency=4
        )
    # Bursts of sign-ups and password checks from the one test client: the tests
    # that are about the hashing queue's bounds set their own.
    options.update(password_hash_queue=1000, password_hash_queue_per_address=1000)
    if TEST_PGBOUNCER_URL and _same_server(database_url, TEST_PGBOUNCER_URL):
        options["db_pgbouncer"] = True
    options.update(overrides)
    return Settings(_env_file=None, **options)


def _same_server(url: str, other: str) -> bool:
    a, b = make_url(url), make_url(other)
    return (a.host, a.port) == (b.host, b.port)


def engine_of(app: FastAPI) -> AsyncEngine:
    """The running app's engine."""
    return state_of(app).engine


def checked_out(app: FastAPI) -> int:
    """Connections of the running app's pool in use right now."""
    return cast(QueuePool, engine_of(app).pool).checkedout()


# Seconds the app's start-up and shutdown may take in a test. With production hashing,
# start-up makes the stand-in hash in a low-priority thread, which a busy machine
# serves last: it took over 5 s (asgi-lifespan's default) beside two busy processes.
LIFESPAN_TIMEOUT = 60


@asynccontextmanager
async def serve(app: FastAPI, *, raise_app_exceptions: bool = True) -> AsyncIterator[AsyncClient]:
    """Run the app as a server does (lifespan included); yield a client speaking HTTP to it."""
    lifespan = LifespanManager(
        app, startup_timeout=LIFESPAN_TIMEOUT, shutdown_timeout=LIFESPAN_TIMEOUT
    )
    async with lifespan, client_of(app, raise_app_exceptions) as client:
        yield client
        # Whatever the test did, every connection went back to the pool.
        assert checked_out(app) == 0


def client_of(
    app: FastAPI, raise_app_exceptions: bool = True, *, address: str = "127.0.0.1"
) -> AsyncClient:
    """A client of a running app (see serve), connecting from `address`."""
    transport = ASGITransport(
        app=app, raise_app_exceptions=raise_app_exceptions, client=(address, 50000)
    )
    return AsyncClient(transport=transport, base_url="http://test")


def unreachable(database: Database) -> str:
    """A URL like the database's, naming a server (or file) that is not there."""
    url = make_url(database.url)
    if database.dialect == "sqlite":
        return url.set(database="/nonexistent-directory/app.db").render_as_string()
    return url.set(port=1).render_as_string(hide_password=False)
