"""Passwords (argon2id via pwdlib, always off the event loop) and access tokens (JWT)."""

import asyncio
import contextlib
import os
import secrets
import threading
import time
from collections import Counter, deque
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple, TypeVar

import jwt
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from app.domain.schemas import MAX_ID
from app.platform.errors import Busy, TooManyAttempts
from app.platform.settings import Settings

R = TypeVar("R")
VERIFIED_TOKENS_KEPT = 10_000


class PasswordHasher:
    """argon2id hashing, in low-priority worker threads, a bounded number at a time.

    argon2 is deliberately slow (~0.1 s of CPU) and releases the GIL. It runs in
    threads of its own, at a lower scheduling priority (PASSWORD_HASH_NICENESS),
    so the event loop and the database keep their CPU while sign-ups and log-ins
    queue for a turn. Whatever a request needs from the database for the check is
    loaded inside its turn: a request waiting for a turn holds no connection.

    Turns go to client addresses in rotation, so a flood from one address delays
    another's request by one hash at most; the queue is bounded per address and
    in all (see `turn`).
    """

    def __init__(self, settings: Settings) -> None:
        self._workers = _Argon2Workers(settings)
        self._turns = _FairTurns(settings.password_hash_concurrency)
        self._max_queued = settings.password_hash_queue
        self._max_queued_per_address = settings.password_hash_queue_per_address
        self._queued: Counter[str] = Counter()

    @property
    def queue_length(self) -> int:
        """Requests hashing or waiting for a turn."""
        return self._queued.total()

    @asynccontextmanager
    async def turn(self, address: str) -> AsyncIterator["HashingTurn"]:
        """A turn at the hasher for a request from `address`. The queue is bounded:
        a flood from one address cannot starve the others (429 past its share), and
        nobody waits behind more than PASSWORD_HASH_QUEUE requests (503)."""
        if self._queued.total() >= self._max_queued:
            raise Busy(retry_after=1)
        if self._queued[address] >= self._max_queued_per_address:
            raise TooManyAttempts("Too many requests from this address; retry later", retry_after=1)
        self._queued[address] += 1
        try:
            await self._turns.acquire(address)
            try:
                yield HashingTurn(self._workers)
            finally:
                self._turns.release(address)
        finally:
            self._queued[address] -= 1
            if not self._queued[address]:
                del self._queued[address]

    async def hash(self, password: str, address: str) -> str:
        async with self.turn(address) as hashing:
            return await hashing.hash(password)

    async def prepare(self) -> None:
        """Start the workers and make the stand-in hash for unknown accounts."""
        await self._workers.stand_in_hash()

    def close(self) -> None:
        self._workers.close()


class _FairTurns:
    """At most `slots` turns at once; those waiting are served one address after another."""

    def __init__(self, slots: int) -> None:
        self._free = slots
        # Insertion order is the rotation: an address served goes to the back.
        self._waiting: dict[str, deque[asyncio.Future[None]]] = {}

    async def acquire(self, address: str) -> None:
        if self._free and not self._waiting:
            self._free -= 1
            return
        turn = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(address, deque()).append(turn)
        try:
            await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():  # granted as it was cancelled
                self.release(address)
            else:
                queue = self._waiting.get(address)
                if queue is not None and turn in queue:
                    queue.remove(turn)
                    if not queue:
                        del self._waiting[address]
            raise

    def release(self, address: str) -> None:
        """The turn of `address` ended: the next goes to another address, if one waits."""
        # `address` goes to the back of the rotation: it may have got its turn without
        # waiting, ahead of addresses that came since (a flood's first request).
        queue = self._waiting.pop(address, None)
        if queue is not None:
            self._waiting[address] = queue
        while self._waiting:
            first, queue = next(iter(self._waiting.items()))
            turn = queue.popleft()
            del self._waiting[first]
            if queue:
                self._waiting[first] = queue
            if not turn.done():
                turn.set_result(None)
                return
        self._free += 1


class HashingTurn:
    """A turn at the hasher (see PasswordHasher.turn)."""

    def __init__(self, workers: "_Argon2Workers") -> None:
        self._workers = workers

    async def hash(self, password: str) -> str:
        return await self._workers.run(self._workers.hasher.hash, password)

    async def verify(self, password: str, hashed: str | None) -> tuple[bool, str | None]:
        """Whether `password` matches `hashed`, and a new hash when the stored one was made
        with other parameters (pwdlib's verify-and-update).

        `hashed=None` (no such account) costs a verification all the same: answering an
        unknown email faster than a wrong password would tell which emails are registered.
        """
        workers = self._workers
        if hashed is None:
            await workers.run(workers.hasher.verify, password, await workers.stand_in_hash())
            return False, None
        return await workers.run(workers.hasher.verify_and_update, password, hashed)


class _Argon2Workers:
    """The hashing threads, started on first use, and the stand-in hash."""

    def __init__(self, settings: Settings) -> None:
        self.hasher = PasswordHash(
            (
                Argon2Hasher(
                    time_cost=settings.password_hash_time_cost,
                    memory_cost=settings.password_hash_memory_cost,
                    parallelism=settings.password_hash_parallelism,
                ),
            )
        )
        self._threads = settings.password_hash_concurrency
        self._niceness = settings.password_hash_niceness
        self._executor: ThreadPoolExecutor | None = None
        self._stand_in_hash: str | None = None

    async def stand_in_hash(self) -> str:
        if self._stand_in_hash is None:  # normally made at start-up
            self._stand_in_hash = await self.run(self.hasher.hash, secrets.token_urlsafe(16))
        return self._stand_in_hash

    async def run(self, fn: Callable[..., R], *args: Any) -> R:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(
                self._threads,
                "password-hashing",
                initializer=_lower_priority,
                initargs=(self._niceness,),
            )
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None


def _lower_priority(niceness: int) -> None:
    # Linux schedules threads individually: this lowers the calling thread only.
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), niceness)


class InvalidToken(Exception):
    """The token is malformed, wrongly signed, expired or lacks a claim."""


class Bearer(NamedTuple):
    """What a valid access token says: whose it is, and the account's token version
    it was issued under (app.domain.policy refuses it once the account's has moved on)."""

    user_id: int
    token_version: int


class TokenIssuer:
    def __init__(self, settings: Settings) -> None:
        self._key = settings.secret_key.get_secret_value()
        self._algorithm = settings.jwt_algorithm
        self._lifetime = timedelta(minutes=settings.access_token_expire_minutes)
        self._verified: dict[str, tuple[Bearer, float]] = {}

    def issue(self, user_id: int, token_version: int) -> str:
        now = datetime.now(UTC)
        claims = {
            "sub": str(user_id),
            "ver": token_version,
            "iat": now,
            "exp": now + self._lifetime,
        }
        return jwt.encode(claims, self._key, algorithm=self._algorithm)

    def bearer(self, token: str) -> Bearer:
        """Who a valid token was issued to."""
        # A token's claims never change: a verified token need not be verified again
        # (a client sends the same one with every request); only its expiry moves.
        known = self._verified.get(token)
        if known is not None and known[1] > time.time():
            return known[0]
        bearer, expires = self._verify(token)
        if len(self._verified) >= VERIFIED_TOKENS_KEPT:
            self._verified.clear()
        self._verified[token] = (bearer, expires)
        return bearer

    def _verify(self, token: str) -> tuple[Bearer, float]:
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=[self._algorithm],
                options={"require": ["exp", "iat", "sub", "ver"]},
            )
            user_id = int(claims["sub"])
            token_version = claims["ver"]
            expires = float(claims["exp"])
        except (jwt.InvalidTokenError, ValueError, TypeError) as error:
            raise InvalidToken from error
        if not 1 <= user_id <= MAX_ID or type(token_version) is not int:
            raise InvalidToken
        return Bearer(user_id, token_version), expires
