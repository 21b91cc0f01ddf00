"""Password hashing: argon2id via pwdlib, always off the event loop."""

import anyio
import anyio.to_thread
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from app.settings import Settings


class PasswordHasher:
    """Hashes and verifies passwords in worker threads.

    argon2 is deliberately slow (~0.1 s) and releases the GIL, so it runs in a
    thread while the event loop keeps serving. A limiter caps how many hashes run
    at once, so a burst of sign-ups cannot take every core from the readers.
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

    async def hash(self, password: str) -> str:
        return await anyio.to_thread.run_sync(self._hash.hash, password, limiter=self._limiter)
