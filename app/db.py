"""The engine, its connections' settings, and the unit of work each request runs in."""

from collections.abc import AsyncIterator
from typing import Any

from fastapi import Request
from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from app.settings import Settings


def create_engine(settings: Settings, **overrides: Any) -> AsyncEngine:
    """One engine per process: created by the app's lifespan, disposed when it ends."""
    url = make_url(settings.database_url)
    options: dict[str, Any] = {"echo": settings.db_echo}
    if url.get_backend_name() == "sqlite":
        # sqlite3's `timeout` is SQLite's busy timeout: a writer waits for the lock
        # instead of failing at once with "database is locked".
        options["connect_args"] = {"timeout": settings.sqlite_busy_timeout}
    if url.database not in (None, "", ":memory:"):
        options.update(
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
            pool_timeout=settings.db_pool_timeout,
            pool_recycle=settings.db_pool_recycle,
            pool_pre_ping=settings.db_pool_pre_ping,
        )
    options.update(overrides)
    engine = create_async_engine(url, **options)
    if url.get_backend_name() == "sqlite":
        event.listen(engine.sync_engine, "connect", _configure_sqlite_connection)
    return engine


def _configure_sqlite_connection(dbapi_connection: Any, _record: Any) -> None:
    # Foreign keys are off by default in SQLite; WAL lets readers run beside the
    # one writer; NORMAL sync is durable in WAL mode except across power loss.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    # expire_on_commit=False: the response is serialised from objects loaded
    # inside the transaction; nothing may reload them after the commit.
    return async_sessionmaker(engine, expire_on_commit=False)


def create_read_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    # Same pool, but each statement runs on its own (AUTOCOMMIT): no BEGIN and no
    # ROLLBACK round trips around requests that only read.
    return create_sessionmaker(engine.execution_options(isolation_level="AUTOCOMMIT"))


READ_ONLY_METHODS = frozenset({"GET", "HEAD"})


async def unit_of_work(request: Request) -> AsyncIterator[AsyncSession]:
    """One request, one session; for requests that may write, one transaction.

    Used with `Depends(..., scope="function")`: FastAPI then runs the code after
    `yield` once the endpoint has returned and its response has been serialised,
    but before a byte of it is sent. So the commit happens first, and when it
    fails the exception reaches the error handlers and the client gets an error
    status instead of a 2xx. Any exception raised by the endpoint rolls back.
    A default-scoped dependency would commit after the response was sent.

    GET and HEAD never write, so they skip the transaction altogether; their
    reads each see committed data (each read route makes one query).
    """
    state = request.app.state
    if request.method in READ_ONLY_METHODS:
        async with state.read_sessionmaker() as session:
            yield session
    else:
        async with state.sessionmaker.begin() as session:
            yield session


async def ping(session: AsyncSession) -> None:
    """Round trip to the database; raises when it cannot be reached."""
    await session.execute(text("SELECT 1"))
