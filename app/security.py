"""Passwords (argon2id via pwdlib, always off the event loop) and access tokens (JWT)."""

import secrets
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import anyio
import anyio.to_thread
import jwt
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from app.schemas import MAX_ID
from app.settings import Settings

T = TypeVar("T")


class PasswordHasher:
    """Hashes and verifies passwords in worker threads, a bounded number at a time.

    argon2 is deliberately slow (~0.1 s) and releases the GIL, so it runs in a
    thread while the event loop keeps serving. A limiter caps how many hashes run
    at once, so a burst of sign-ups or log-ins cannot take every core from readers.
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
        self._dummy_hash: str | None = None

    async def hash(self, password: str) -> str:
        async with self._limiter:
            return await anyio.to_thread.run_sync(self._hash.hash, password)

    async def verify(self, password: str, hashed: str) -> bool:
        async with self._limiter:
            return await anyio.to_thread.run_sync(self._hash.verify, password, hashed)

    async def authenticate(
        self,
        password: str,
        load: Callable[[], Awaitable[T | None]],
        stored_hash: Callable[[T], str],
    ) -> tuple[T | None, str | None]:
        """Load an account and check `password` against it, in one hashing turn.

        Returns the account if the password matches (else None), and a new hash
        when the stored one was made with other parameters (pwdlib's
        verify-and-update). `load` runs only once a turn is ours, so a request
        waiting for a turn does not hold a database connection meanwhile. An
        unknown account costs one verification too: answering it faster than a
        wrong password would tell which emails are registered.
        """
        async with self._limiter:
            account = await load()
            if account is None:
                await anyio.to_thread.run_sync(self._hash.verify, password, self._dummy())
                return None, None
            matches, new_hash = await anyio.to_thread.run_sync(
                self._hash.verify_and_update, password, stored_hash(account)
            )
        return (account, new_hash) if matches else (None, None)

    def _dummy(self) -> str:
        if self._dummy_hash is None:
            self._dummy_hash = self._hash.hash(secrets.token_urlsafe(16))
        return self._dummy_hash

    async def prepare(self) -> None:
        """Compute the stand-in hash for unknown accounts once, at start-up."""
        await anyio.to_thread.run_sync(self._dummy)


class InvalidToken(Exception):
    """The token is malformed, wrongly signed, expired or lacks a subject."""


class TokenIssuer:
    def __init__(self, settings: Settings) -> None:
        self._key = settings.secret_key.get_secret_value()
        self._algorithm = settings.jwt_algorithm
        self._lifetime = timedelta(minutes=settings.access_token_expire_minutes)

    @property
    def lifetime(self) -> timedelta:
        return self._lifetime

    def issue(self, user_id: int) -> str:
        now = datetime.now(UTC)
        claims = {"sub": str(user_id), "iat": now, "exp": now + self._lifetime}
        return jwt.encode(claims, self._key, algorithm=self._algorithm)

    def user_id(self, token: str) -> int:
        """The user a valid token was issued to."""
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=[self._algorithm],
                options={"require": ["exp", "iat", "sub"]},
            )
            user_id = int(claims["sub"])
        except (jwt.InvalidTokenError, ValueError) as error:
            raise InvalidToken from error
        if not 1 <= user_id <= MAX_ID:
            raise InvalidToken
        return user_id
