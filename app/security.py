"""Passwords (argon2id via pwdlib, always off the event loop) and access tokens (JWT)."""

import asyncio
import contextlib
import os
import secrets
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import anyio
import jwt
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from app.schemas import MAX_ID
from app.settings import Settings

R = TypeVar("R")
VERIFIED_TOKENS_KEPT = 10_000


class PasswordHasher:
    """argon2id hashing, in low-priority worker threads, a bounded number at a time.

    argon2 is deliberately slow (~0.1 s of CPU) and releases the GIL. It runs in
    threads of its own, at a lower scheduling priority (PASSWORD_HASH_NICENESS),
    so the event loop and the database keep their CPU while sign-ups and log-ins
    queue for a turn. Whatever a request needs from the database for the check is
    loaded inside its turn: a request waiting for a turn holds no connection.
    """

    def __init__(self, settings: Settings) -> None:
        self._hash = PasswordHash(
            (
                Argon2Hasher(
                    time_cost=settings.password_hash_time_cost,
                    memory_cost=settings.password_hash_memory_cost,
                    parallelism=settings.password_hash_parallelism,
                ),
            )
        )
        self._limiter = anyio.CapacityLimiter(settings.password_hash_concurrency)
        self._workers = settings.password_hash_concurrency
        self._niceness = settings.password_hash_niceness
        self._executor: ThreadPoolExecutor | None = None
        self._dummy_hash: str | None = None

    @asynccontextmanager
    async def turn(self) -> AsyncIterator["HashingTurn"]:
        async with self._limiter:
            yield HashingTurn(self)

    async def hash(self, password: str) -> str:
        async with self.turn() as hashing:
            return await hashing.hash(password)

    async def prepare(self) -> None:
        """Start the workers and make the stand-in hash for unknown accounts."""
        self._dummy_hash = await self._run(self._hash.hash, secrets.token_urlsafe(16))

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    async def _run(self, fn: Callable[..., R], *args: Any) -> R:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(
                self._workers,
                "password-hashing",
                initializer=_lower_priority,
                initargs=(self._niceness,),
            )
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)


class HashingTurn:
    """A turn at the hasher (see PasswordHasher.turn)."""

    def __init__(self, hasher: PasswordHasher) -> None:
        self._hasher = hasher

    async def hash(self, password: str) -> str:
        return await self._hasher._run(self._hasher._hash.hash, password)

    async def verify(self, password: str, hashed: str | None) -> tuple[bool, str | None]:
        """Whether `password` matches `hashed`, and a new hash when the stored one was made
        with other parameters (pwdlib's verify-and-update).

        `hashed=None` (no such account) costs a verification all the same: answering an
        unknown email faster than a wrong password would tell which emails are registered.
        """
        hasher = self._hasher
        if hashed is None:
            if hasher._dummy_hash is None:  # normally made at start-up
                await hasher.prepare()
            await hasher._run(hasher._hash.verify, password, hasher._dummy_hash)
            return False, None
        return await hasher._run(hasher._hash.verify_and_update, password, hashed)


def _lower_priority(niceness: int) -> None:
    # Linux schedules threads individually: this lowers the calling thread only.
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), niceness)


class InvalidToken(Exception):
    """The token is malformed, wrongly signed, expired or lacks a subject."""


class TokenIssuer:
    def __init__(self, settings: Settings) -> None:
        self._key = settings.secret_key.get_secret_value()
        self._algorithm = settings.jwt_algorithm
        self._lifetime = timedelta(minutes=settings.access_token_expire_minutes)
        self._verified: dict[str, tuple[int, float]] = {}

    @property
    def lifetime(self) -> timedelta:
        return self._lifetime

    def issue(self, user_id: int) -> str:
        now = datetime.now(UTC)
        claims = {"sub": str(user_id), "iat": now, "exp": now + self._lifetime}
        return jwt.encode(claims, self._key, algorithm=self._algorithm)

    def user_id(self, token: str) -> int:
        """The user a valid token was issued to."""
        # A token's claims never change: a verified token need not be verified again
        # (a client sends the same one with every request); only its expiry moves.
        known = self._verified.get(token)
        if known is not None and known[1] > time.time():
            return known[0]
        user_id, expires = self._verify(token)
        if len(self._verified) >= VERIFIED_TOKENS_KEPT:
            self._verified.clear()
        self._verified[token] = (user_id, expires)
        return user_id

    def _verify(self, token: str) -> tuple[int, float]:
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=[self._algorithm],
                options={"require": ["exp", "iat", "sub"]},
            )
            user_id = int(claims["sub"])
            expires = float(claims["exp"])
        except (jwt.InvalidTokenError, ValueError, TypeError) as error:
            raise InvalidToken from error
        if not 1 <= user_id <= MAX_ID:
            raise InvalidToken
        return user_id, expires
