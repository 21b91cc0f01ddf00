"""Readiness: the process is not draining (app.platform.runtime), the database answers
within HEALTH_TIMEOUT and its schema is at the migrations' head. A connection of its own
for each check, outside the request pool, so that it answers within about a second even
when requests have exhausted the pool or the database stopped answering. Used by
GET /health/ready and `app check` (which never drains)."""

import asyncio
import logging
from pathlib import Path

from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from app.platform.errors import describe
from app.platform.runtime import draining

log = logging.getLogger("app.health")
MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def schema_head() -> str | None:
    """The revision `alembic upgrade head` leads to (the migrations ship with the app)."""
    return ScriptDirectory(str(MIGRATIONS)).get_current_head()


class Readiness:
    def __init__(self, engine: AsyncEngine, timeout: float) -> None:
        self._engine = engine  # a NullPool engine: a fresh connection each check
        self._timeout = timeout
        self._head = schema_head()

    async def problem(self) -> str | None:
        """Why the service is not ready to serve, or None. For any client: the
        database's own words are not in it (the log names the error's class)."""
        if draining():  # the database is not asked: nothing new should come here
            return "shutting down: this server takes no new requests"
        problem, error = await self._check()
        if error is not None:
            log.warning("readiness check failed: %s", type(error).__name__)
        return problem

    async def diagnosis(self) -> str | None:
        """problem(), with what the database or the network said, for the operator
        (`app check`); nothing is logged."""
        problem, error = await self._check()
        return f"{problem}: {describe(error)}" if error is not None else problem

    async def _check(self) -> tuple[str | None, Exception | None]:
        """The problem, and the error behind it when the database could not be asked."""
        try:
            async with asyncio.timeout(self._timeout):
                async with self._engine.connect() as connection:
                    result = await connection.execute(
                        text("SELECT version_num FROM alembic_version")
                    )
                    current = result.scalar()
        except TimeoutError:
            return f"the database did not answer within {self._timeout:g} s", None
        except (SQLAlchemyError, OSError) as error:
            if _no_schema(error):
                return "the database has no schema yet: run the migrations (app migrate)", None
            return "the database is unreachable or refused the check", error
        if current != self._head:
            return (
                f"the schema is at revision {current}, not {self._head}: run the migrations",
                None,
            )
        return None, None

    async def close(self) -> None:
        await self._engine.dispose()


def _no_schema(error: Exception) -> bool:
    # PostgreSQL: undefined_table; SQLite: "no such table".
    orig = getattr(error, "orig", None)
    return getattr(orig, "sqlstate", None) == "42P01" or "no such table" in str(orig)
