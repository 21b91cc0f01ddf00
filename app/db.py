"""The engine, its connections' settings, and the unit of work each request runs in."""

from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

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

F = TypeVar("F", bound=Callable[..., Any])


def create_engine(settings: Settings) -> AsyncEngine:
    """One engine per process: created by the app's lifespan, disposed when it ends.

    Its connections run each statement on its own (AUTOCOMMIT), which is what
    reads want; sessions that write open a transaction (create_sessionmaker).
    """
    url = make_url(settings.database_url)
    options: dict[str, Any] = {"echo": settings.db_echo, "isolation_level": "AUTOCOMMIT"}
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


# Each backend's default: a transaction per session (SQLite: BEGIN before a write).
TRANSACTIONAL = {"postgresql": "READ COMMITTED", "sqlite": "SERIALIZABLE"}


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that hold one transaction, committed or rolled back as a whole."""
    # expire_on_commit=False: the response is serialised from objects loaded
    # inside the transaction; nothing may reload them after the commit.
    level = TRANSACTIONAL[engine.dialect.name]
    return async_sessionmaker(
        engine.execution_options(isolation_level=level), expire_on_commit=False
    )


def create_statement_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions whose every statement is its own transaction (the engine's AUTOCOMMIT):
    no BEGIN and no COMMIT round trips, for requests whose work is reads, or one
    statement (see one_statement)."""
    return async_sessionmaker(engine, expire_on_commit=False)


def one_statement(endpoint: F) -> F:
    """Marks a route whose whole effect is one statement (permission check included).

    Its unit of work is that statement, committed by the database when it
    completes, so before the response: wrapping it in BEGIN ... COMMIT would add
    two round trips and nothing else.
    """
    endpoint.one_statement = True  # type: ignore[attr-defined]
    return endpoint


READ_ONLY_METHODS = frozenset({"GET", "HEAD"})


async def unit_of_work(request: Request) -> AsyncIterator[AsyncSession]:
    """One request, one session; for requests that may write, one transaction.

    Used with `Depends(..., scope="function")`: FastAPI then runs the code after
    `yield` once the endpoint has returned and its response has been serialised,
    but before a byte of it is sent. So the commit happens first, and when it
    fails the exception reaches the error handlers and the client gets an error
    status instead of a 2xx. Any exception raised by the endpoint rolls back.
    A default-scoped dependency would commit after the response was sent.

    GET and HEAD never write, and routes marked one_statement write with a single
    statement: they skip the explicit transaction; each statement sees committed
    data and commits on its own.
    """
    state = request.app.state
    endpoint = request.scope.get("endpoint")
    if request.method in READ_ONLY_METHODS or getattr(endpoint, "one_statement", False):
        async with state.statement_sessionmaker() as session:
            yield session
    else:
        async with state.sessionmaker.begin() as session:
            yield session


async def ping(session: AsyncSession) -> None:
    """Round trip to the database; raises when it cannot be reached."""
    await session.execute(text("SELECT 1"))
