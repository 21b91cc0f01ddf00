"""Log-in failures: counted per subject (an account or a client address) in windows
(see app.domain.throttle)."""

from datetime import UTC, datetime
from typing import Any, Generic, cast

from sqlalchemy import CursorResult, bindparam, case, delete, select
from sqlalchemy.dialects import postgresql, sqlite

from app.domain.repositories.common import S
from app.platform.models import LoginFailures
from app.platform.sessions import SingleWrite


def _count_failure_statement(dialect_insert: Any) -> Any:
    row = LoginFailures
    count = dialect_insert(row)
    expired = row.window_ends_at <= bindparam("now")
    return count.on_conflict_do_update(
        index_elements=[row.subject],
        set_={
            "failures": case((expired, 1), else_=row.failures + 1),
            "window_ends_at": case(
                (expired, count.excluded.window_ends_at), else_=row.window_ends_at
            ),
        },
    )


_COUNT_FAILURES = {
    "postgresql": _count_failure_statement(postgresql.insert),
    "sqlite": _count_failure_statement(sqlite.insert),
}
_FAILURES = select(
    LoginFailures.failures, LoginFailures.window_ends_at, LoginFailures.subject
).where(
    LoginFailures.subject.in_(bindparam("subjects", expanding=True)),
    LoginFailures.window_ends_at > bindparam("now"),
)
_CLEAR_FAILURES = delete(LoginFailures).where(LoginFailures.subject == bindparam("subject"))
_PURGE_FAILURES = delete(LoginFailures).where(LoginFailures.window_ends_at <= bindparam("now"))


class LoginFailureRepository(Generic[S]):
    """Failed log-ins, counted per subject (an account or a client address) in windows."""

    def __init__(self, session: S) -> None:
        self.session: S = session

    async def current(
        self, subjects: list[str], *, now: datetime
    ) -> dict[str, tuple[int, datetime]]:
        """Failures and window end, per subject whose window is still open."""
        params = {"subjects": subjects, "now": now}
        rows = await self.session.execute(_FAILURES, params)
        return {subject: (failures, _utc(ends)) for failures, ends, subject in rows}

    async def count(
        self: "LoginFailureRepository[SingleWrite]",
        subjects: list[str],
        *,
        now: datetime,
        window_ends_at: datetime,
    ) -> None:
        """One more failure for each subject (a new window for those whose ended)."""
        rows = [{"subject": s, "failures": 1, "window_ends_at": window_ends_at} for s in subjects]
        statement = _COUNT_FAILURES[self.session.dialect].values(rows)
        await self.session.write(statement, {"now": now})

    async def clear(self: "LoginFailureRepository[SingleWrite]", subject: str) -> None:
        await self.session.write(_CLEAR_FAILURES, {"subject": subject})

    async def purge(self: "LoginFailureRepository[SingleWrite]", *, now: datetime) -> int:
        result = await self.session.write(_PURGE_FAILURES, {"now": now})
        return cast(CursorResult[Any], result).rowcount


def _utc(moment: datetime) -> datetime:
    # SQLite hands back what it stored (UTC) without the zone; PostgreSQL with it.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
