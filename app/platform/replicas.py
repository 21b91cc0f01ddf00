"""Reads from streaming replicas, never older than what the client itself has written.

PostgreSQL's streaming replication keeps each replica a moment behind its primary. A read
that its route declares may go to a replica (ReplicaRead, app.platform.sessions) goes to
one only when the replica is known to have what the request must see:

- with a Consistency-Token (what the client's last write answered: the primary's WAL
  position after its commit, signed, expiring), to a replica that has replayed at least
  that far, as last seen; otherwise to the primary;
- without one, to a replica at most REPLICA_MAX_STALENESS behind the primary;
- with a token that is forged, tampered with or expired, to the primary: it promises
  nothing, and costs nothing more than a read of the primary.

Each process reads, every REPLICA_CHECK_INTERVAL, the primary's WAL position and each
replica's replay position (`pg_last_wal_replay_lsn()`: what a query there sees).
Staleness is how long ago the primary was where the replica is now, from the primary's
positions as sampled: not the replica's last replay timestamp (it ages while nothing is
written) nor `replay_lag` (it says nothing of a replay that stopped). A replica that does
not answer a check within REPLICA_CHECK_TIMEOUT, or fails a request, is taken out (its
circuit opens) until a check succeeds again; the statement it failed runs again on the
primary.
"""

import asyncio
import base64
import contextlib
import hashlib
import hmac
import itertools
import logging
import math
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.platform.engine import create_engine
from app.platform.errors import describe
from app.platform.metrics import Metrics
from app.platform.sessions import ReplicaRead, Sessions
from app.platform.settings import Settings

log = logging.getLogger("app.replicas")
# Bytes of WAL since the start of the cluster's history: comparable positions.
_PRIMARY_POSITION = text("SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint")
_REPLAY_POSITION = text("SELECT (pg_last_wal_replay_lsn() - '0/0'::pg_lsn)::bigint")
PRIMARY = "primary"
UNREACHED = 2**63 - 1  # a position no replica reaches


class ConsistencyTokens:
    """`<position>.<expiry>.<signature>`: the primary's WAL position after a write, in hex;
    when the promise ends, in Unix seconds; an HMAC of both under a key derived from
    SECRET_KEY, so that every process of the service, and none other, can read them."""

    def __init__(self, secret: str, ttl: int) -> None:
        self._key = hmac.new(secret.encode(), b"consistency-token", hashlib.sha256).digest()
        self._ttl = ttl

    def issue(self, position: int) -> str:
        payload = f"{position:x}.{int(time.time()) + self._ttl}"
        return f"{payload}.{self._signature(payload)}"

    def position(self, token: str) -> int | None:
        """The position the token promises, or None when it promises nothing."""
        payload, _, signature = token.rpartition(".")
        if not hmac.compare_digest(signature, self._signature(payload)):
            return None
        position, _, expires = payload.partition(".")
        try:
            if int(expires) < time.time():
                return None
            return int(position, 16)
        except ValueError:
            return None

    def _signature(self, payload: str) -> str:
        digest = hmac.new(self._key, payload.encode(), hashlib.sha256).digest()[:16]
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")


@dataclass(eq=False)
class Replica:
    name: str  # host:port, as metrics and readiness show it
    engine: AsyncEngine
    sessions: Sessions
    checks: AsyncEngine  # one connection, for the position checks
    replayed: int | None = None  # the replay position last seen
    staleness: float = math.inf  # seconds, as of the last check
    up: bool = False
    out_until: float = math.inf  # the circuit: out until a check after this succeeds


class Choice(NamedTuple):
    replica: Replica | None  # None: the primary
    reason: str


class Replicas:
    """Where a ReplicaRead goes, for one process. With no replica configured, every read
    goes to the primary and nothing is checked."""

    def __init__(
        self, settings: Settings, primary: AsyncEngine, sessions: Sessions, metrics: Metrics | None
    ) -> None:
        self._primary = primary
        self._sessions = sessions
        self._metrics = metrics
        self._max_staleness = settings.replica_max_staleness
        self._interval = settings.replica_check_interval
        self._timeout = settings.replica_check_timeout
        self.tokens = ConsistencyTokens(
            settings.secret_key.get_secret_value(), settings.consistency_token_ttl
        )
        self.replicas = [
            Replica(
                name=f"{url.host}:{url.port or 5432}",
                engine=(engine := create_engine(settings, url)),
                sessions=Sessions(engine),
                checks=create_engine(settings, url, pool_size=1),
            )
            for url in settings.replica_engine_urls
        ]
        # The primary's positions, sampled: (monotonic time, position), oldest first; read
        # on a connection of their own, outside the requests' pool.
        self._samples: deque[tuple[float, int]] = deque()
        self._primary_checks = create_engine(settings, pool_size=1) if self.replicas else None
        self._turn = itertools.count()

    @property
    def configured(self) -> bool:
        return bool(self.replicas)

    def choose(self, token: str | None) -> Choice:
        """Where a read goes (and why), given the request's Consistency-Token."""
        if not self.replicas:
            return Choice(None, PRIMARY)
        now = time.monotonic()
        live = [r for r in self.replicas if r.up and r.out_until <= now]
        if token is None:
            fresh = [r for r in live if r.staleness <= self._max_staleness]
            choice = self._one_of(fresh, "fresh", "stale" if live else "down")
        else:
            position = self.tokens.position(token)
            if position is None:
                choice = Choice(None, "token refused")
            else:
                caught_up = [r for r in live if r.replayed is not None and r.replayed >= position]
                choice = self._one_of(caught_up, "caught up", "behind" if live else "down")
        self._count(choice)
        return choice

    def _one_of(self, replicas: list[Replica], reason: str, otherwise: str) -> Choice:
        if not replicas:
            return Choice(None, otherwise)
        return Choice(replicas[next(self._turn) % len(replicas)], reason)

    def _count(self, choice: Choice) -> None:
        if self._metrics is not None:
            target = choice.replica.name if choice.replica else PRIMARY
            self._metrics.reads.labels(target, choice.reason).inc()

    @contextlib.asynccontextmanager
    async def read(self, replica: Replica | None) -> AsyncIterator[ReplicaRead]:
        """A ReplicaRead on `replica` (None: the primary), which moves to the primary
        should the replica fail a statement."""
        if replica is None:
            async with self._sessions.statements() as session:
                yield ReplicaRead(session)
            return
        async with contextlib.AsyncExitStack() as stack:

            async def on_the_primary(error: BaseException) -> AsyncSession:
                self._failed(replica, error)
                return await stack.enter_async_context(self._sessions.statements())

            session = await stack.enter_async_context(replica.sessions.statements())
            yield ReplicaRead(session, on_the_primary)

    def _failed(self, replica: Replica, error: BaseException) -> None:
        # Out until a check succeeds; the next check comes within the interval.
        replica.out_until = time.monotonic() + self._interval
        log.warning(
            "replica %s failed a read, answered by the primary: %s", replica.name, describe(error)
        )
        if self._metrics is not None:
            self._metrics.reads.labels(PRIMARY, "replica failed").inc()

    async def token_after_write(self) -> str:
        """A Consistency-Token for what the primary has committed so far. Should the
        primary not say (it went away just after the commit), the token names a position
        no replica reaches: the client's reads go to the primary until it expires."""
        try:
            async with asyncio.timeout(self._timeout), self._primary.connect() as connection:
                position = int(await connection.scalar(_PRIMARY_POSITION))
        except Exception as error:  # the write has committed: its answer stands
            log.warning("could not read the primary's WAL position: %s", describe(error))
            position = UNREACHED
        return self.tokens.issue(position)

    @contextlib.asynccontextmanager
    async def watched(self) -> AsyncIterator[None]:
        """Checks the positions every REPLICA_CHECK_INTERVAL while the block runs."""
        if not self.replicas:
            yield
            return

        async def every_interval() -> None:
            while True:
                await self.check()
                await asyncio.sleep(self._interval)

        task = asyncio.create_task(every_interval())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def check(self) -> None:
        """Read the primary's position, then every replica's replay position."""
        if self._primary_checks is None:  # no replica to check
            return
        try:
            async with asyncio.timeout(self._timeout), self._primary_checks.connect() as connection:
                position = await connection.scalar(_PRIMARY_POSITION)
            now = time.monotonic()
            self._samples.append((now, int(position)))
            # What staleness up to the bound needs, and a little more.
            while len(self._samples) > 2 and self._samples[1][0] < now - 4 * self._max_staleness:
                self._samples.popleft()
        except Exception as error:  # the primary's own faults are the requests' to report
            log.debug("could not read the primary's WAL position: %s", describe(error))
            await self._primary_checks.dispose()
        await asyncio.gather(*(self._check(replica) for replica in self.replicas))

    async def _check(self, replica: Replica) -> None:
        try:
            async with asyncio.timeout(self._timeout), replica.checks.connect() as connection:
                replayed = await connection.scalar(_REPLAY_POSITION)
            if replayed is None:
                raise RuntimeError("not a replica: it replays no WAL")
        except Exception as error:  # any failure takes it out
            if replica.up:
                log.warning("replica %s is out: %s", replica.name, describe(error))
            replica.up = False
            replica.out_until = math.inf
            await replica.checks.dispose()  # a connection cut off mid-check is not reused
        else:
            if not replica.up:
                log.info("replica %s is in", replica.name)
            replica.replayed = int(replayed)
            replica.up = True
            replica.out_until = 0.0
        replica.staleness = self._staleness(replica.replayed, time.monotonic())
        if self._metrics is not None:
            self._metrics.replica_up.labels(replica.name).set(int(replica.up))
            self._metrics.replica_staleness.labels(replica.name).set(
                replica.staleness if math.isfinite(replica.staleness) else -1
            )

    def _staleness(self, replayed: int | None, now: float) -> float:
        """Seconds since the primary was last seen at or before `replayed`: the replica
        has everything the primary had then."""
        if replayed is None:
            return math.inf
        at = [moment for moment, position in self._samples if position <= replayed]
        return now - at[-1] if at else math.inf

    def status(self) -> dict[str, Any]:
        """Each replica: in or out, and how far behind (seconds; None when unknown)."""
        return {
            replica.name: {
                "up": replica.up and replica.out_until <= time.monotonic(),
                "staleness_seconds": round(replica.staleness, 3)
                if math.isfinite(replica.staleness)
                else None,
            }
            for replica in self.replicas
        }

    async def close(self) -> None:
        if self._primary_checks is not None:
            await self._primary_checks.dispose()
        for replica in self.replicas:
            await replica.engine.dispose()
            await replica.checks.dispose()
