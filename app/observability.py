"""What operators see: a request id on every response and log line, one access line per
request, JSON logs, and Prometheus metrics.

All of it is one pure ASGI middleware (Starlette's base-class middleware breaks
cancellation and costs more), outermost, so that even a 413 or an unhandled error
carries its request id.
"""

import asyncio
import logging
import logging.config
import os
import random
import re
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, ClassVar

import orjson
import structlog
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from sqlalchemy.pool import QueuePool
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.db import FairQueuePool
from app.errors import Unavailable, why_unavailable
from app.services import Services, services
from app.settings import Settings

REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")
# Kept out of the access log at info level: load balancers and scrapers call them
# every few seconds.
QUIET_PATHS = frozenset({"/health", "/health/live", "/health/ready", "/metrics"})
ACCESS_LOGGER = "app.access"
ACCESS_FIELDS = ("method", "route", "status", "duration_ms", "user_id")
access_log = logging.getLogger(ACCESS_LOGGER)
log = logging.getLogger("app")


def logging_config(settings: Settings, stream: str = "ext://sys.stderr") -> dict[str, Any]:
    """Every log line through one formatter: the app's, uvicorn's and SQLAlchemy's.

    JSON (one object a line) or console lines, each with the request id of the
    request that logged it. A dictConfig: uvicorn applies it in each worker.
    """
    loggers: dict[str, Any] = {
        # Their lines go to the root's handler, and nowhere else.
        "uvicorn": {"handlers": [], "propagate": True},
        "uvicorn.error": {"handlers": [], "propagate": True},
        # uvicorn's access lines are replaced by the app's (route, request id, user).
        "uvicorn.access": {"handlers": [], "propagate": False, "level": "CRITICAL"},
        "sqlalchemy": {"handlers": [], "propagate": True},
        # The pools' INFO lines ("Pool disposed", "Pool recreating", at every exit)
        # tell an operator nothing; their warnings do. SQLAlchemy names a pool's
        # logger after its class: ours is app.db.FairQueuePool.
        "sqlalchemy.pool": {"level": "WARNING"},
        "app.db.FairQueuePool": {"level": "WARNING"},
    }
    if settings.db_echo:
        # Every statement, at INFO, whatever LOG_LEVEL says: SQLAlchemy's `echo`,
        # through the app's handler. Parameters and rows stay out (app.db).
        loggers["sqlalchemy.engine"] = {"level": "INFO"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "app": {"()": log_formatter, "as_json": settings.logs_as_json},
        },
        "handlers": {
            "out": {
                "class": f"{__name__}.LineBatchingHandler",
                "formatter": "app",
                "stream": stream,
            },
        },
        "root": {"handlers": ["out"], "level": settings.log_level},
        "loggers": loggers,
    }


def configure_logging(settings: Settings, stream: Any = None) -> None:
    config = logging_config(settings)
    logging.config.dictConfig(config)
    if stream is not None:
        for handler in logging.getLogger().handlers:
            if isinstance(handler, logging.StreamHandler):
                handler.setStream(stream)


# One write(2) of at most this many bytes reaches a pipe whole, never interleaved with
# another process's writes to the same pipe (POSIX PIPE_BUF, 4096 on Linux).
ATOMIC_WRITE = 4096
PENDING_MAX = 64 * 1024


class LineBatchingHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A StreamHandler that, inside a running event loop, writes the lines of one loop
    turn together at the start of the next (a write(2) per line cost an access line
    about a fifth of its time). Lines are written whole: in writes of at most
    ATOMIC_WRITE bytes ending at a line's end (a longer line on its own, as a plain
    StreamHandler would), so workers sharing one pipe never split each other's lines.
    Outside an event loop, or from another thread, a line is written at once; flush()
    and close() (logging.shutdown at exit) write what is pending."""

    def __init__(self, stream: Any = None) -> None:
        super().__init__(stream)
        self._pending: list[tuple[str, int]] = []  # lines, with their length in bytes
        self._pending_size = 0
        self._drain_on: asyncio.AbstractEventLoop | None = None

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record) + self.terminator
        except Exception:
            self.handleError(record)
            return
        size = len(line) if line.isascii() else len(line.encode())
        self._pending.append((line, size))
        self._pending_size += size
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is None or self._pending_size >= PENDING_MAX:
            self._write_pending()
        elif self._drain_on is not loop:
            # Once per loop turn (and again should a loop close with lines pending).
            self._drain_on = loop
            loop.call_soon(self._drain)

    def _drain(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            self._drain_on = None
            self._write_pending()

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            self._write_pending()
            super().flush()

    def _write_pending(self) -> None:
        if not self._pending:
            return
        lines, self._pending, self._pending_size = self._pending, [], 0
        try:
            chunk: list[str] = []
            chunk_size = 0
            for line, size in lines:
                if chunk and chunk_size + size > ATOMIC_WRITE:
                    self._write("".join(chunk))
                    chunk, chunk_size = [], 0
                chunk.append(line)
                chunk_size += size
            self._write("".join(chunk))
        except Exception:
            self.handleError(logging.makeLogRecord({"msg": "%d log lines", "args": (len(lines),)}))

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()


def _tidy(_logger: Any, _name: str, event: dict[str, Any]) -> dict[str, Any]:
    # uvicorn passes a colored copy of some messages; the message itself is enough.
    event.pop("color_message", None)
    event["pid"] = os.getpid()  # which worker, when there are several
    return event


def log_formatter(as_json: bool) -> logging.Formatter:
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.ExtraAdder(),
        _tidy,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer(serializer=_json)
        if as_json
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    formatter = _JSONFormatter if as_json else structlog.stdlib.ProcessorFormatter
    return formatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )


class _JSONFormatter(structlog.stdlib.ProcessorFormatter):
    """structlog's JSON lines; the access line, written once per request, is built
    directly, with the same fields the processors give it (a fifth of the cost)."""

    def format(self, record: logging.LogRecord) -> str:
        if record.name != ACCESS_LOGGER or record.exc_info:
            return super().format(record)
        fields: dict[str, Any] = {"event": record.getMessage()}
        fields.update(structlog.contextvars.get_contextvars())
        fields["level"] = record.levelname.lower()
        fields["logger"] = ACCESS_LOGGER
        for name in ACCESS_FIELDS:
            fields[name] = getattr(record, name, None)
        fields["pid"] = record.process
        fields["timestamp"] = _iso_utc(record.created)
        return _json(fields)


def _json(fields: dict[str, Any], **_: Any) -> str:
    return orjson.dumps(fields, default=str).decode()


_second: list[Any] = [None, ""]  # the last whole second formatted, and its text


def _iso_utc(seconds: float) -> str:
    # As structlog's TimeStamper(fmt="iso", utc=True) writes it; the date and time
    # are formatted once a second, the microseconds every time.
    whole = int(seconds)
    if _second[0] != whole:
        _second[1] = datetime.fromtimestamp(whole, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        _second[0] = whole
    return f"{_second[1]}.{int((seconds - whole) * 1e6):06d}Z"


_PID = [os.getpid()]
os.register_at_fork(after_in_child=lambda: _PID.__setitem__(0, os.getpid()))


class AccessRecord(logging.LogRecord):
    """The access line's LogRecord. LogRecord.__init__ looks up, for every record, where
    it was logged from (file, module), the thread, the process and its name: for an
    access line, always this module in the serving thread, so those are fixed here,
    and a record costs a fraction of what Logger.makeRecord's does."""

    # In the record's own dict, as formatters read them (`%(filename)s`).
    FIXED: ClassVar[dict[str, Any]] = {
        "name": ACCESS_LOGGER,
        "msg": "%s %s %s",
        "pathname": __file__,
        "filename": os.path.basename(__file__),
        "module": os.path.basename(__file__).removesuffix(".py"),
        "lineno": 0,
        "funcName": "Observe",
        "exc_info": None,
        "exc_text": None,
        "stack_info": None,
        "thread": None,
        "threadName": None,
        "processName": None,
        # Records name their asyncio task from Python 3.12 on; before, a record has no
        # such field, and the console format would show it as an extra (taskName=None).
        **({"taskName": None} if sys.version_info >= (3, 12) else {}),
    }

    def __init__(
        self,
        level: int,
        method: str,
        route: str,
        status: int,
        duration_ms: float,
        user_id: int | None,
    ) -> None:
        self.__dict__.update(self.FIXED)
        self.levelno = level
        self.levelname = logging.getLevelName(level)
        self.args = (method, route, status)
        self.method = method
        self.route = route
        self.status = status
        self.duration_ms = duration_ms
        self.user_id = user_id
        self.created = created = time.time()
        self.msecs = int((created - int(created)) * 1000) + 0.0
        self.relativeCreated = (created - logging._startTime) * 1000  # type: ignore[attr-defined]
        self.process = _PID[0]


class ConnectionCounts:
    """This process's client connections, as the server sees them (app.server): how many
    are open, and how many it refused or dropped, by reason. Refusals that say the
    server is saturated or under attack are logged, a line per burst at most."""

    LOGGED: ClassVar[dict[str, int]] = {
        "too many connections": logging.WARNING,
        "request head too large": logging.INFO,
        "request head not received in time": logging.INFO,
    }
    REASONS: ClassVar[tuple[str, ...]] = (*LOGGED, "silent")  # every reason app.server gives
    LOG_EVERY = 10.0  # seconds

    def __init__(self) -> None:
        self.open = 0
        self.dropped_by_reason: dict[str, int] = {}
        self._unlogged: dict[str, int] = {}
        self._logged_at = -self.LOG_EVERY

    def opened(self) -> None:
        self.open += 1

    def closed(self) -> None:
        self.open -= 1

    def dropped(self, reason: str) -> None:
        self.dropped_by_reason[reason] = self.dropped_by_reason.get(reason, 0) + 1
        if reason not in self.LOGGED:
            return
        self._unlogged[reason] = self._unlogged.get(reason, 0) + 1
        now = time.monotonic()
        if now - self._logged_at < self.LOG_EVERY:
            return
        self._logged_at = now
        level = max(self.LOGGED[r] for r in self._unlogged)
        counts = ", ".join(f"{n} {r}" for r, n in sorted(self._unlogged.items()))
        self._unlogged = {}
        log.log(level, "connections refused: %s (%d open)", counts, self.open)


# The server's connections in this process.
CONNECTIONS = ConnectionCounts()


class Metrics:
    """The service's Prometheus metrics. With several worker processes, set
    PROMETHEUS_MULTIPROC_DIR (`app serve --workers N` does): every worker writes its
    values there and /metrics sums them."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "http_requests", "HTTP requests answered", ["method", "route", "status"], registry=r
        )
        self.duration = Histogram(
            "http_request_duration_seconds",
            "Time to answer, by route template",
            ["method", "route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=r,
        )

        def gauge(name: str, documentation: str, *, per_worker: bool = False) -> Gauge:
            # With several workers: the sum over the live ones, or, where each worker
            # meets a limit of its own, each live worker's value, labelled with its pid.
            if per_worker:
                return Gauge(name, documentation, registry=r, multiprocess_mode="liveall")
            return Gauge(name, documentation, registry=r, multiprocess_mode="livesum")

        self.in_flight = gauge("http_requests_in_flight", "Requests being answered")
        # What the workers hold open to the database, against its max_connections: a sum.
        self.pool_size = gauge("db_pool_size", "Connections the pool keeps open")
        self.pool_overflow = gauge("db_pool_overflow", "Connections beyond the pool size")
        # Each worker has its own pool, hashing queue and connection limit: one of them
        # can run out while the sum looks fine.
        self.pool_checked_out = gauge("db_pool_checked_out", "Connections in use", per_worker=True)
        self.pool_waiting = gauge(
            "db_pool_waiting", "Requests waiting for a connection", per_worker=True
        )
        self.hash_queue = gauge(
            "password_hash_queue_length", "Requests hashing or waiting to", per_worker=True
        )
        self.connections_open = gauge(
            "http_connections_open", "Client connections open", per_worker=True
        )
        self.unavailable = Counter(
            "http_unavailable", "Responses 503, by reason", ["reason"], registry=r
        )
        # Each reason at 0 from the start: a panel draws it before its first 503, and
        # rate() sees that first one (a series that appears at 1 shows no rise).
        for reason in Unavailable:
            self.unavailable.labels(reason)
        self.connections_dropped = Counter(
            "http_connections_dropped",
            "Client connections the server refused or closed before a request, by reason",
            ["reason"],
            registry=r,
        )
        for dropped in ConnectionCounts.REASONS:
            self.connections_dropped.labels(dropped)
        self._dropped_seen: dict[str, int] = {}
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def record(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, status)
        children = self._children.get(key)
        if children is None:
            children = (
                self.requests.labels(method, route, str(status)),
                self.duration.labels(method, route),
            )
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def count_connections(self, connections: ConnectionCounts) -> None:
        self.connections_open.set(connections.open)
        for reason, count in connections.dropped_by_reason.items():
            new = count - self._dropped_seen.get(reason, 0)
            if new:
                self.connections_dropped.labels(reason).inc(new)
                self._dropped_seen[reason] = count
                if reason == Unavailable.TOO_MANY_CONNECTIONS:  # answered 503
                    self.unavailable.labels(reason).inc(new)

    def exposition(self) -> bytes:
        if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return generate_latest(registry)
        return generate_latest(self.registry)


class Observe:
    """Request id, access line and metrics for every HTTP request."""

    def __init__(self, app: ASGIApp, *, access_log: bool, metrics: Metrics | None) -> None:
        self.app = app
        self.access_log = access_log
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope)
        header = (b"x-request-id", request_id.encode())
        status = 500
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                status, started = message["status"], True
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        bound = structlog.contextvars.bind_contextvars(request_id=request_id)
        start = time.perf_counter()
        if self.metrics:
            self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            # A bug: one line with its traceback, and a 500 that still has its id.
            log.exception("unhandled error on %s %s", scope["method"], scope["path"])
            if not started:
                await send_with_id(
                    {
                        "type": "http.response.start",
                        "status": 500,
                        "headers": [(b"content-type", b"application/json")],
                    }
                )
                await send_with_id({"type": "http.response.body", "body": INTERNAL_ERROR})
        finally:
            seconds = time.perf_counter() - start
            route = getattr(scope.get("route"), "path", "unmatched")
            if self.metrics:
                self.metrics.in_flight.dec()
                self.metrics.record(scope["method"], route, status, seconds)
                if status == 503:
                    self.metrics.unavailable.labels(why_unavailable(scope)).inc()
            level = logging.DEBUG if scope["path"] in QUIET_PATHS else logging.INFO
            if self.access_log and access_log.isEnabledFor(level):
                # What Logger.log does, less looking up where it was called from.
                access_log.handle(
                    AccessRecord(
                        level,
                        scope["method"],
                        route,
                        status,
                        round(seconds * 1000, 2),
                        scope.get("state", {}).get("user_id"),
                    )
                )
            structlog.contextvars.reset_contextvars(**bound)


INTERNAL_ERROR = b'{"detail":"Internal Server Error"}'


def _request_id(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            text: str = value.decode("latin-1")
            if REQUEST_ID.fullmatch(text):
                return text
            break
    # Not a secret, only unique: random's generator (reseeded in each forked worker)
    # costs a fraction of uuid4's system call for fresh entropy on every request.
    return f"{random.getrandbits(128):032x}"


async def metrics_endpoint(request: Request) -> Response:
    """GET /metrics: Prometheus' text format (404 when METRICS_ENABLED is false)."""
    found = services(request)
    if found.metrics is None:
        return Response(status_code=404)
    sample(found)
    return Response(found.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)


def sample(found: Services) -> None:
    """Set the gauges that describe this process now: its pool, its hashing queue."""
    if found.metrics is None:
        return
    pool = found.engine.pool
    if isinstance(pool, QueuePool):
        found.metrics.pool_size.set(pool.size())
        found.metrics.pool_checked_out.set(pool.checkedout())
        found.metrics.pool_overflow.set(max(pool.overflow(), 0))
    if isinstance(pool, FairQueuePool):
        found.metrics.pool_waiting.set(pool.waiting())
    found.metrics.hash_queue.set(found.passwords.queue_length)
    found.metrics.count_connections(CONNECTIONS)


@asynccontextmanager
async def sampling(found: Services) -> AsyncIterator[None]:
    """Keeps the gauges current every second, so that with several workers /metrics
    sums fresh values of each."""
    if found.metrics is None:
        yield
        return

    async def every_second() -> None:
        while True:
            sample(found)
            await asyncio.sleep(1)

    task = asyncio.create_task(every_second())
    try:
        yield
    finally:
        task.cancel()
        if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
            multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]
