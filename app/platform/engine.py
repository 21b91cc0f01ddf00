"""The database engine: its pool, its connections' settings and health, and what never
reaches a log. One engine per process (the app's lifespan, a CLI command)."""

import asyncio
import contextlib
import logging
import socket
import time
from collections import deque
from typing import Any, cast

from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, ExceptionContext
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import AsyncAdaptedQueuePool, ConnectionPoolEntry, NullPool
from sqlalchemy.util import await_
from sqlalchemy.util import queue as sqla_queue
from sqlalchemy.util.queue import AsyncAdaptedQueue

from app.platform.settings import Settings


def create_engine(
    settings: Settings, url: URL | None = None, *, pool_size: int | None = None
) -> AsyncEngine:
    """One engine per process and database server (the primary, DATABASE_URL's, unless
    `url` names a replica): created by the app's lifespan, disposed when it ends.

    Its connections run each statement on its own (AUTOCOMMIT), which is what
    reads and single writes want; transactions open one (Sessions.transactions).
    Statements' parameters never reach a log or an error message (they hold
    password hashes and emails), and neither do the rows read.
    """
    url = url or settings.engine_url
    # No `echo`: it would print statements to stdout beside the log. DB_ECHO turns
    # SQLAlchemy's engine logger up instead (app.platform.logs.logging_config).
    options: dict[str, Any] = {
        "isolation_level": "AUTOCOMMIT",
        "hide_parameters": True,
    }
    asyncpg = url.get_driver_name() == "asyncpg"
    if url.get_backend_name() == "sqlite":
        # sqlite3's `timeout` is SQLite's busy timeout: a writer waits for the lock
        # instead of failing at once with "database is locked".
        options["connect_args"] = {"timeout": settings.sqlite_busy_timeout}
    elif asyncpg:
        options["connect_args"] = _asyncpg_connect_args(settings)
    if url.database not in (None, "", ":memory:"):
        options.update(
            pool_size=pool_size or settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
            pool_timeout=settings.db_pool_timeout,
            pool_recycle=settings.db_pool_recycle,
            # asyncpg connections get a ping with a timeout of their own (ConnectionHealth)
            pool_pre_ping=settings.db_pool_pre_ping and not asyncpg,
            poolclass=FairQueuePool,
        )
    engine = create_async_engine(url, **options)
    if url.get_backend_name() == "sqlite":
        event.listen(engine.sync_engine, "connect", _configure_sqlite_connection)
    elif asyncpg:
        ConnectionHealth(settings).watch(engine)
    _NOTHING_CARRIED_IN_LOGS.install()
    return engine


class FairQueue(AsyncAdaptedQueue[ConnectionPoolEntry]):
    """The pool's queue of idle connections, first come, first served.

    asyncio.Queue, under SQLAlchemy's default pool, lets a request that has just
    arrived take a returned connection before the waiting request it woke up gets
    to it; that one then queues again, at the back. Under a burst larger than the
    pool, some requests waited past DB_POOL_TIMEOUT (a 503) while later ones went
    through. Here a returned connection goes straight to the request that has
    waited longest, and nobody takes one while others wait.
    """

    def __init__(self, maxsize: int = 0, use_lifo: bool = False) -> None:
        super().__init__(maxsize, use_lifo)
        self._waiting: deque[asyncio.Future[ConnectionPoolEntry]] = deque()

    @property
    def waiting(self) -> int:
        """Requests waiting for a connection."""
        return len(self._waiting)

    def put_nowait(self, item: ConnectionPoolEntry) -> None:
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():  # not timed out or cancelled meanwhile
                waiter.set_result(item)
                return
        super().put_nowait(item)

    def put(
        self, item: ConnectionPoolEntry, block: bool = True, timeout: float | None = None
    ) -> None:
        self.put_nowait(item)  # never full: the pool only takes back what it gave

    def get(self, block: bool = True, timeout: float | None = None) -> ConnectionPoolEntry:
        if not block or not self._waiting:
            with contextlib.suppress(asyncio.QueueEmpty):
                return self._queue.get_nowait()
            if not block:
                raise sqla_queue.Empty()
        waiter = asyncio.get_running_loop().create_future()
        self._waiting.append(waiter)
        return await_(self._wait(waiter, within=timeout))

    async def _wait(
        self, waiter: asyncio.Future[ConnectionPoolEntry], *, within: float | None
    ) -> ConnectionPoolEntry:
        try:
            async with asyncio.timeout(within):
                return await waiter
        except TimeoutError:
            if waiter.done() and not waiter.cancelled():  # handed over as time ran out
                return waiter.result()
            self._forget(waiter)
            raise sqla_queue.Empty() from None
        except BaseException:  # cancelled: a connection handed over goes back
            if waiter.done() and not waiter.cancelled():
                self.put_nowait(waiter.result())
            else:
                self._forget(waiter)
            raise

    def _forget(self, waiter: asyncio.Future[ConnectionPoolEntry]) -> None:
        with contextlib.suppress(ValueError):
            self._waiting.remove(waiter)


class FairQueuePool(AsyncAdaptedQueuePool):
    _queue_class = FairQueue

    def waiting(self) -> int:
        """Requests waiting for a connection, beside size() and checkedout()."""
        return cast(FairQueue, self._pool).waiting


def create_health_engine(settings: Settings) -> AsyncEngine:
    """For readiness checks (GET /health/ready, `app check`): a fresh connection each
    time, outside the request pool, whose connecting gives up after HEALTH_TIMEOUT."""
    # `timeout` is asyncpg's connect timeout, and sqlite3's busy timeout.
    connect_args: dict[str, Any] = {"timeout": settings.health_timeout}
    if settings.engine_url.get_driver_name() == "asyncpg":
        application_name = f"{settings.db_application_name}-health"
        if settings.db_pgbouncer:
            connect_args |= pgbouncer_connect_args(settings, application_name)
        else:
            connect_args["server_settings"] = {"application_name": application_name}
        connect_args["command_timeout"] = settings.health_timeout
    return create_async_engine(settings.engine_url, poolclass=NullPool, connect_args=connect_args)


async def connections_returned(engine: AsyncEngine, *, within: float) -> None:
    """Wait until no connection is checked out of the engine's pool, `within` seconds at most."""
    checked_out = getattr(engine.pool, "checkedout", None)  # not every pool counts
    for _ in range(round(within / 0.01)):
        if checked_out is None or not checked_out():
            return
        await asyncio.sleep(0.01)


def _configure_sqlite_connection(dbapi_connection: Any, _record: Any) -> None:
    # Foreign keys are off by default in SQLite; WAL lets readers run beside the
    # one writer; NORMAL sync is durable in WAL mode except across power loss.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _asyncpg_connect_args(settings: Settings) -> dict[str, Any]:
    def ms(seconds: float) -> str:
        return str(round(seconds * 1000))

    server_settings = {
        "application_name": settings.db_application_name,
        "statement_timeout": ms(settings.db_statement_timeout),
        "lock_timeout": ms(settings.db_lock_timeout),
        # A backend running a statement checks every second that its client is still
        # there, and stops when it is not (a cancelled request whose connection was
        # closed, a process that exited): it does not sit in a lock queue. PostgreSQL 14+.
        "client_connection_check_interval": "1000",
    }
    if settings.db_pgbouncer:
        return pgbouncer_connect_args(settings) | {
            "timeout": settings.db_connect_timeout,
            "command_timeout": settings.db_command_timeout,
        }
    if settings.db_tcp_keepalive:
        # The server's side of the keepalive: a vanished service's backends go away.
        server_settings.update(
            tcp_keepalives_idle=str(settings.db_tcp_keepalive),
            tcp_keepalives_interval=str(KEEPALIVE_INTERVAL),
            tcp_keepalives_count=str(KEEPALIVE_PROBES),
            tcp_user_timeout=ms(_keepalive_gives_up_after(settings)),
        )
    return {
        "timeout": settings.db_connect_timeout,
        # asyncpg has none by default: a round trip to a server that does not answer
        # (a network partition) would wait for the OS, i.e. for many minutes.
        "command_timeout": settings.db_command_timeout,
        "server_settings": server_settings,
    }


def pgbouncer_connect_args(
    settings: Settings, application_name: str | None = None
) -> dict[str, Any]:
    """What asyncpg needs behind PgBouncer in transaction mode (DB_PGBOUNCER=true), for
    every engine: requests', readiness checks', migrations'.

    Each transaction, and each statement outside one, may run on another server
    connection. asyncpg's named prepared statements, cached per connection, would
    then be missing there ("does not exist"), or, worse, be another statement of the
    same name and give a wrong answer. asyncpg numbers those names per process, so
    even a fresh connection's first statement meets another process's of the same
    name there ("already exists"). With its statement cache off, asyncpg 0.32+ sends
    every statement unnamed, parsed and run in one round trip, which cannot be split.
    And nothing may rely on a session's settings: PgBouncer refuses startup parameters
    but the application name, so the statement and lock timeouts and the keepalive
    come from PgBouncer's connect_query (README, "PgBouncer").
    """
    return {
        "statement_cache_size": 0,
        "server_settings": {"application_name": application_name or settings.db_application_name},
    }


KEEPALIVE_INTERVAL = 1  # seconds between keepalive probes
KEEPALIVE_PROBES = 3  # unanswered probes before the connection is given up


def _keepalive_gives_up_after(settings: Settings) -> float:
    return float(settings.db_tcp_keepalive + KEEPALIVE_INTERVAL * KEEPALIVE_PROBES)


class ConnectionHealth:
    """How the asyncpg engine finds out that connections died, and replaces them.

    - A round trip the server did not answer in time (asyncpg's command timeout)
      or a socket error counts as a lost connection: the connection is closed at
      once (not politely, which would wait for the silent server) and every other
      connection opened before it is replaced on its next checkout.
    - A connection that sat in the pool for more than DB_PING_AFTER_IDLE seconds
      (or any, with DB_POOL_PRE_PING) is pinged before use, with DB_PING_TIMEOUT:
      a connection that died while idle (a partition, a server restart, a peer
      that vanished) is replaced instead of failing its request. Under load
      connections are back in use within milliseconds, so this costs nothing there.
    - TCP keepalive on the client's socket: the OS closes a connection whose peer
      stopped answering even while nothing is sent.

    Closing a connection never waits for the server: asyncpg's goodbye waits for an
    answer (up to the command timeout, or 2 s when SQLAlchemy replaces a broken
    one), which a server that stopped answering never sends; shutting down with
    such connections in the pool would take minutes.
    """

    _RETURNED = "health.returned"  # when the connection came back to the pool

    def __init__(self, settings: Settings) -> None:
        self.ping_after_idle = 0.0 if settings.db_pool_pre_ping else settings.db_ping_after_idle
        self.ping_timeout = settings.db_ping_timeout
        self.keepalive = settings.db_tcp_keepalive
        self.gives_up_after = _keepalive_gives_up_after(settings)

    def watch(self, engine: AsyncEngine) -> None:
        target = engine.sync_engine
        event.listen(target, "connect", self._opened)
        event.listen(target, "checkin", self._returned)
        event.listen(target, "checkout", self._checked_out)
        event.listen(target, "close", self._closing)
        event.listen(target, "handle_error", self._failed)

    def _opened(self, dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        if self.keepalive:
            self._keep_alive(dbapi_connection.driver_connection)

    def _keep_alive(self, driver_connection: Any) -> None:
        # asyncpg has no option for it; its transport's socket takes the options.
        transport = getattr(driver_connection, "_transport", None)
        sock = transport.get_extra_info("socket") if transport is not None else None
        if sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
            return  # a Unix socket: no peer to lose
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, self.keepalive)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, KEEPALIVE_INTERVAL)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, KEEPALIVE_PROBES)
        # Data sent and not acknowledged for that long closes the connection too.
        sock.setsockopt(
            socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, round(self.gives_up_after * 1000)
        )

    def _returned(self, dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        if dbapi_connection is not None:
            record.info[self._RETURNED] = time.monotonic()

    def _checked_out(self, dbapi_connection: Any, record: ConnectionPoolEntry, _proxy: Any) -> None:
        returned = record.info.get(self._RETURNED)
        if returned is None or time.monotonic() - returned < self.ping_after_idle:
            return  # just opened, or in use a moment ago
        try:
            ping = dbapi_connection.driver_connection.execute("SELECT 1", timeout=self.ping_timeout)
            await_(ping)
        except Exception as error:
            # The pool opens a new connection for this checkout, and replaces the
            # others opened before now as they are checked out.
            raise sa_exc.InvalidatePoolError(f"pooled connection found dead: {error!r}") from error

    def _failed(self, context: ExceptionContext) -> None:
        # asyncpg raises its command timeout and socket errors as they are (not as
        # DBAPI errors), and SQLAlchemy would replace only the one connection.
        if isinstance(context.original_exception, OSError):  # TimeoutError is one
            context.is_disconnect = True
            context.invalidate_pool_on_disconnect = True

    def _closing(self, dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        # The pool closes idle or broken connections only: for the server, a
        # session that ends without a goodbye ends all the same.
        if dbapi_connection is not None:
            dbapi_connection.driver_connection.terminate()


class _NothingCarriedInLogs(logging.Filter):
    """Rows and parameters hold emails and password hashes. The engine hides the
    parameters (hide_parameters); this drops the DEBUG records that would still
    show them, whoever turns DEBUG on: SQLAlchemy's of every row read, and
    aiosqlite's of every call it makes, arguments included."""

    LOGGERS = ("sqlalchemy.engine.Engine", "aiosqlite")

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == "aiosqlite":
            return record.levelno > logging.DEBUG
        return record.msg != "Row %r"

    def install(self) -> None:
        for name in self.LOGGERS:
            logger = logging.getLogger(name)
            if self not in logger.filters:
                logger.addFilter(self)


_NOTHING_CARRIED_IN_LOGS = _NothingCarriedInLogs()
