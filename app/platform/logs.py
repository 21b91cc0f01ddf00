"""Logs: every line through one formatter (JSON or console), with the request id of the
request that logged it; the access line's record; lines written a loop turn at a time,
in writes that workers sharing a pipe never split."""

import asyncio
import logging
import logging.config
import os
import sys
import time
from datetime import UTC, datetime
from typing import Any, ClassVar

import orjson
import structlog

from app.platform.settings import Settings

ACCESS_LOGGER = "app.access"
ACCESS_FIELDS = ("method", "route", "status", "duration_ms", "user_id")
access_log = logging.getLogger(ACCESS_LOGGER)


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
        # logger after its class: ours is app.platform.engine.FairQueuePool.
        "sqlalchemy.pool": {"level": "WARNING"},
        "app.platform.engine.FairQueuePool": {"level": "WARNING"},
    }
    if settings.db_echo:
        # Every statement, at INFO, whatever LOG_LEVEL says: SQLAlchemy's `echo`,
        # through the app's handler. Parameters and rows stay out (app.platform.engine).
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
