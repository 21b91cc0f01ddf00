"""Failed log-ins throttled per account and per client address.

Past LOGIN_MAX_FAILURES_PER_ACCOUNT failures for one email, or
LOGIN_MAX_FAILURES_PER_ADDRESS from one client address, within
LOGIN_FAILURE_WINDOW seconds, log-ins get 429 with Retry-After until the window
ends, before any password is hashed. Unknown emails count like known ones (the
answer tells nothing about which exist). A successful log-in clears its
account's count. The counts live in the database, so every replica shares them.
"""

import math
from datetime import UTC, datetime, timedelta

from app.domain.repositories.login_failures import LoginFailureRepository
from app.platform.errors import TooManyAttempts
from app.platform.sessions import Sessions
from app.platform.settings import Settings


class LoginThrottle:
    def __init__(self, settings: Settings, sessions: Sessions) -> None:
        self._sessions = sessions
        self._window = timedelta(seconds=settings.login_failure_window)
        self._per_account = settings.login_max_failures_per_account
        self._per_address = settings.login_max_failures_per_address

    async def check(self, email: str, address: str) -> bool:
        """Raises TooManyAttempts while the account or the address is throttled;
        otherwise tells whether the account has failures on record."""
        now = datetime.now(UTC)
        limits = {_account(email): self._per_account, _address(address): self._per_address}
        async with self._sessions.read() as db:
            current = await LoginFailureRepository(db).current(list(limits), now=now)
        throttled = [ends for s, (n, ends) in current.items() if n >= limits[s]]
        if throttled:
            wait = (max(throttled) - now).total_seconds()
            raise TooManyAttempts(retry_after=max(1, math.ceil(wait)))
        return _account(email) in current

    async def failed(self, email: str, address: str) -> None:
        now = datetime.now(UTC)
        async with self._sessions.single_write() as write:
            await LoginFailureRepository(write).count(
                [_account(email), _address(address)], now=now, window_ends_at=now + self._window
            )

    async def succeeded(self, email: str) -> None:
        async with self._sessions.single_write() as write:
            await LoginFailureRepository(write).clear(_account(email))


def _account(email: str) -> str:
    return f"account:{email}"


def _address(address: str) -> str:
    return f"address:{address}"
