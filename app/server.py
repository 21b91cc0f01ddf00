"""`app serve`: uvicorn, with the limits a server facing clients it does not know needs.

uvicorn bounds neither the size of a request head nor the time a client takes to send
it: one client sending a huge header stalls every request of its worker while it is
parsed, and clients that send their heads a byte at a time, or nothing at all, hold
their connections (and file handles) for ever. Here:

- a request head larger than MAX_REQUEST_HEAD_SIZE is refused with 431, as soon as
  that much has arrived, and the connection closed;
- a client that has not sent a complete request head REQUEST_HEAD_TIMEOUT seconds
  after its connection opened (or after its previous response) is dropped: with 408
  if it had sent part of one, silently if nothing;
- an idle keep-alive connection is closed after KEEP_ALIVE_TIMEOUT;
- past MAX_CONNECTIONS open connections, a new one is answered 503 at once and
  closed, logged and counted, before the process runs out of file handles; it
  recovers by itself as connections close.

On SIGTERM, with SHUTDOWN_DRAIN_SECONDS set, the server first drains: for that long
GET /health/ready answers 503 while everything else is served and new connections are
still accepted, so that a load balancer checking readiness stops sending new requests
before the listening socket closes. Then uvicorn's graceful shutdown: new connections
refused, GRACEFUL_SHUTDOWN_TIMEOUT for the requests under way. A second SIGTERM, or a
SIGINT, ends the drain at once.

With several workers, each drains on the SIGTERM its supervisor passes on; a worker that
dies is replaced, its replacement given WORKER_HEALTHCHECK_TIMEOUT to start (a loaded
machine takes seconds to import the app), and the dead worker's gauges are dropped from
/metrics.
"""

import logging
import os
import resource
import shutil
import signal
import tempfile
import time
from asyncio import TimerHandle, Transport
from dataclasses import dataclass
from types import FrameType
from typing import Any, cast

import httptools
import uvicorn
from prometheus_client import multiprocess
from uvicorn.config import STARTUP_FAILURE
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.supervisors.multiprocess import Multiprocess, Process

from app.platform.logs import logging_config
from app.platform.metrics import CONNECTIONS
from app.platform.runtime import start_draining
from app.platform.settings import Settings

log = logging.getLogger("uvicorn.error")  # where uvicorn says how it starts and stops

# File handles kept for what is not a client connection: the database pool, log
# files, readiness checks, the interpreter's own.
RESERVED_FILE_HANDLES = 100


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    max_head_size: int
    head_timeout: float
    max_connections: int

    @classmethod
    def of(cls, settings: Settings) -> "ConnectionLimits":
        return cls(
            max_head_size=settings.max_request_head_size,
            head_timeout=settings.request_head_timeout,
            max_connections=settings.max_connections or _connections_the_process_can_hold(),
        )


def _connections_the_process_can_hold() -> int:
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return max(soft - RESERVED_FILE_HANDLES, 1)


def _raise_file_handle_limit() -> None:
    # The soft limit is often far below the hard one (1,024 against 1,048,576): every
    # client connection is a file handle, and so is every database connection.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class ServerConfig(uvicorn.Config):
    """uvicorn's configuration, carrying the connection limits and the drain to every
    worker."""

    def __init__(
        self, app: str, *, limits: ConnectionLimits, drain_seconds: float, **options: Any
    ) -> None:
        super().__init__(app, http=LimitedHttpProtocol, **options)
        self.limits = limits
        self.drain_seconds = drain_seconds


def _response(status: bytes, body: bytes, *headers: bytes) -> bytes:
    return b"".join(
        [
            b"HTTP/1.1 " + status + b"\r\n",
            b"content-type: application/json\r\n",
            b"content-length: %d\r\n" % len(body),
            *(header + b"\r\n" for header in headers),
            b"connection: close\r\n\r\n",
            body,
        ]
    )


HEAD_TOO_LARGE = _response(
    b"431 Request Header Fields Too Large", b'{"detail":"Request head too large"}'
)
HEAD_TIMED_OUT = _response(
    b"408 Request Timeout", b'{"detail":"Request head not received in time"}'
)
TOO_MANY_CONNECTIONS = _response(
    b"503 Service Unavailable",
    b'{"detail":"Too many connections, retry later"}',
    b"retry-after: 1",
)


class _HeadTooLarge(Exception):
    pass


class LimitedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, bounding each request head's size and the time to
    receive it, and the number of connections (see the module's docstring)."""

    def __init__(self, config: ServerConfig, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)
        self.limits = config.limits
        self._head_timer: TimerHandle | None = None
        self._in_head = False  # a request head has begun and is not complete
        self._head_size = 0  # bytes received since it began (an upper bound)
        self._counted = False

    def connection_made(self, transport: Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections:
            CONNECTIONS.dropped("too many connections")
            transport.write(TOO_MANY_CONNECTIONS)
            transport.close()
            return
        CONNECTIONS.opened()
        self._counted = True
        self._await_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_timer()
        if self._counted:
            CONNECTIONS.closed()
            self._counted = False
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        # As uvicorn's, with the head's size checked as it arrives.
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError as error:
            if isinstance(error.__context__, _HeadTooLarge):
                self._drop(HEAD_TOO_LARGE, "request head too large")
                return
            self._refuse_invalid()
            return
        except httptools.HttpParserError:
            self._refuse_invalid()
            return
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        if self._in_head:
            self._head_size += len(data)
            if self._head_size > self.limits.max_head_size:
                self._drop(HEAD_TOO_LARGE, "request head too large")

    def _refuse_invalid(self) -> None:
        message = "Invalid HTTP request received."
        self.logger.warning(message)
        self.send_400_response(message)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True
        self._head_size = 0

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._stop_head_timer()
        # Exactly: what arrived may hold the body too, or the next request.
        size = len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)
        if size > self.limits.max_head_size:
            raise _HeadTooLarge
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.timeout_keep_alive_task is not None:  # idle now, until the next request
            self._await_head()

    def _await_head(self) -> None:
        self._stop_head_timer()
        self._head_timer = self.loop.call_later(self.limits.head_timeout, self._head_timed_out)

    def _stop_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self._in_head:
            self._drop(HEAD_TIMED_OUT, "request head not received in time")
        elif not self.transport.is_closing():
            CONNECTIONS.dropped("silent")
            self.transport.close()

    def _drop(self, response: bytes, reason: str) -> None:
        self._stop_head_timer()
        self._in_head = False
        if self.transport.is_closing():
            return
        CONNECTIONS.dropped(reason)
        self.transport.write(response)
        self.transport.close()


class DrainingServer(uvicorn.Server):
    """uvicorn's server, draining on SIGTERM before it shuts down (see the module's
    docstring). uvicorn's handle_exit only asks the main loop, which looks every 0.1 s,
    to end; here a first SIGTERM sets a deadline instead, and the main loop asks for
    the end itself once the deadline has passed."""

    def __init__(self, config: ServerConfig) -> None:
        super().__init__(config)
        self.drain_seconds = config.drain_seconds
        self.drain_ends: float | None = None  # time.monotonic() when the drain ends
        self.drain_announced = False

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        # A signal handler: it only records; the main loop acts (on_tick).
        if (
            sig == signal.SIGTERM
            and self.drain_seconds > 0
            and self.started  # one that has not finished starting just stops
            and self.drain_ends is None
            and not self.should_exit
        ):
            self.drain_ends = time.monotonic() + self.drain_seconds
            start_draining()
            return
        super().handle_exit(sig, frame)

    async def on_tick(self, counter: int) -> bool:
        if self.drain_ends is not None and not self.should_exit:
            self._drain(self.drain_ends)
        return await super().on_tick(counter)

    def _drain(self, ends: float) -> None:
        if not self.drain_announced:
            self.drain_announced = True
            log.info(
                "Draining for %g s (readiness checks get 503), then shutting down",
                self.drain_seconds,
            )
        if time.monotonic() >= ends:
            log.info("Drained")
            super().handle_exit(signal.SIGTERM, None)  # it exits by SIGTERM, as uvicorn does


class Worker(Process):
    """A worker of `app serve --workers N`: uvicorn's, serving with DrainingServer."""

    @property
    def server(self) -> uvicorn.Server:
        if self._server is None:
            self._server = DrainingServer(cast(ServerConfig, self.config))
        return self._server


class Supervisor(Multiprocess):
    """uvicorn's worker supervisor, its workers drain on SIGTERM, and one that died
    leaves nothing in /metrics. Stopping, it closes its copy of the listening socket at
    once: the workers keep theirs while they drain, and once they close them, new
    connections are refused rather than left unanswered in the socket's queue.

    It keeps its N workers: SIGHUP, SIGTTIN and SIGTTOU, with which uvicorn's supervisor
    replaces or adds or removes workers, are ignored. A worker replaced that way would
    drain as one that stops, answering the load balancer's checks with 503 while the
    replica serves on; a replica is changed by restarting it (its load balancer drains
    it)."""

    def init_processes(self) -> None:
        for _ in range(self.processes_num):
            self.processes.append(self._start_worker())

    def _start_worker(self) -> Worker:
        worker = Worker(self.config, self.sockets)
        worker.start()
        return worker

    def keep_subprocess_alive(self) -> None:
        if self.should_exit.is_set():
            return
        for index, worker in enumerate(self.processes):
            if worker.is_alive(timeout=self.config.timeout_worker_healthcheck):
                continue
            worker.kill()  # hung, if not dead
            worker.join()
            if worker.exitcode == STARTUP_FAILURE:  # the next would fail the same way
                log.error("Child process [%s] failed to start, stopping", worker.pid)
                self.should_exit.set()
                return
            log.info("Child process [%s] died", worker.pid)
            if "PROMETHEUS_MULTIPROC_DIR" in os.environ and worker.pid is not None:
                multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]
            self.processes[index] = self._start_worker()

    def terminate_all(self) -> None:
        for sock in self.sockets:
            sock.close()
        super().terminate_all()

    def handle_hup(self) -> None:
        log.warning("Received SIGHUP: ignored (restart the replica to replace its workers)")

    def handle_ttin(self) -> None:
        log.warning("Received SIGTTIN: ignored (app serve keeps its --workers)")

    def handle_ttou(self) -> None:
        log.warning("Received SIGTTOU: ignored (app serve keeps its --workers)")


def serve(settings: Settings, host: str, port: int, workers: int) -> None:
    """uvicorn with uvloop and httptools; our logging in every worker; on SIGTERM,
    SHUTDOWN_DRAIN_SECONDS of draining, then GRACEFUL_SHUTDOWN_TIMEOUT for the requests
    under way."""
    _raise_file_handle_limit()
    metrics_dir = None
    if workers > 1 and "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        # Each worker writes its metrics there; /metrics, in any worker, sums them.
        metrics_dir = tempfile.mkdtemp(prefix="app-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    config = ServerConfig(
        "app.main:app",
        limits=ConnectionLimits.of(settings),
        drain_seconds=settings.shutdown_drain_seconds,
        host=host,
        port=port,
        workers=workers,
        loop="uvloop",
        log_config=logging_config(settings),
        access_log=False,  # the app writes one access line per request itself
        proxy_headers=True,
        forwarded_allow_ips=settings.trusted_proxies,
        timeout_keep_alive=settings.keep_alive_timeout,
        timeout_graceful_shutdown=settings.graceful_shutdown_timeout,
        timeout_worker_healthcheck=settings.worker_healthcheck_timeout,
    )
    try:
        if workers > 1:
            Supervisor(config, sockets=[config.bind_socket()]).run()
        else:
            server = DrainingServer(config)
            server.run()
            if not server.started:
                raise SystemExit(3)  # as uvicorn: it could not start
    finally:
        if metrics_dir is not None:  # ours: nothing reads it once the workers are gone
            shutil.rmtree(metrics_dir, ignore_errors=True)
