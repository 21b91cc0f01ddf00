"""The service's Prometheus metrics, and the counts behind those the server keeps
(client connections). With several worker processes, PROMETHEUS_MULTIPROC_DIR (set by
`app serve --workers N`) lets any worker's /metrics sum them all."""

import asyncio
import logging
import os
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, ClassVar

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from sqlalchemy.pool import Pool, QueuePool

from app.platform.engine import FairQueuePool
from app.platform.errors import Unavailable

log = logging.getLogger("app")


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
        # Streaming replicas (app.platform.replicas): where reads that may use one went,
        # and each replica's state as this process last saw it.
        self.reads = Counter(
            "db_reads",
            "Reads that a replica may serve, by where they went and why",
            ["target", "reason"],
            registry=r,
        )
        self.replica_up = Gauge(
            "db_replica_up",
            "1 while the replica takes reads (the lowest over the workers)",
            ["replica"],
            registry=r,
            multiprocess_mode="livemin",
        )
        self.replica_staleness = Gauge(
            "db_replica_staleness_seconds",
            "How far behind the primary the replica was at its last check (-1: unknown)",
            ["replica"],
            registry=r,
            multiprocess_mode="livemax",
        )
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

    def sample(self, pool: Pool, hash_queue_length: int) -> None:
        """Set the gauges that describe this process now: its pool, its hashing queue,
        its connections."""
        if isinstance(pool, QueuePool):
            self.pool_size.set(pool.size())
            self.pool_checked_out.set(pool.checkedout())
            self.pool_overflow.set(max(pool.overflow(), 0))
        if isinstance(pool, FairQueuePool):
            self.pool_waiting.set(pool.waiting())
        self.hash_queue.set(hash_queue_length)
        self.count_connections(CONNECTIONS)

    @asynccontextmanager
    async def sampled_every_second(self, sample: Callable[[], None]) -> AsyncIterator[None]:
        """Keeps the gauges current while the block runs, so that with several workers
        /metrics sums fresh values of each; a worker leaving says so."""

        async def every_second() -> None:
            while True:
                sample()
                await asyncio.sleep(1)

        task = asyncio.create_task(every_second())
        try:
            yield
        finally:
            task.cancel()
            if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
                multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]
