"""Idempotency keys: requests made with an Idempotency-Key, per caller, and the responses
recorded for them (see app.api.idempotency)."""

from datetime import datetime
from typing import Any, Generic, NamedTuple, cast

from sqlalchemy import CursorResult, and_, bindparam, delete, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from app.domain.repositories.common import S
from app.platform.models import IdempotencyKey
from app.platform.sessions import SingleWrite, Transaction


class IdempotencyRecord(NamedTuple):
    fingerprint: str
    status_code: int | None  # None while the first request runs
    body: str | None
    headers: str | None  # a JSON object: the response headers a replay repeats


def _claim_statement(dialect_insert: Any) -> Any:
    record = IdempotencyKey
    claim = dialect_insert(record).values(
        caller_id=bindparam("record_caller"),
        key=bindparam("record_key"),
        fingerprint=bindparam("new_fingerprint"),
        expires_at=bindparam("new_expires_at"),
        locked_until=bindparam("new_locked_until"),
        claimed_by=bindparam("new_claimed_by"),
    )
    # A record that expired, or whose first request's hold lapsed before it recorded a
    # response (it died, or lost its database), is taken over; a live one is left as
    # it is (and nothing comes back).
    return claim.on_conflict_do_update(
        index_elements=[record.caller_id, record.key],
        set_={
            "fingerprint": claim.excluded.fingerprint,
            "expires_at": claim.excluded.expires_at,
            "locked_until": claim.excluded.locked_until,
            "claimed_by": claim.excluded.claimed_by,
            "status_code": None,
            "body": None,
            "headers": None,
        },
        where=or_(
            record.expires_at <= bindparam("now"),
            and_(record.status_code.is_(None), record.locked_until <= bindparam("now")),
        ),
    ).returning(record.caller_id)


# INSERT ... ON CONFLICT DO UPDATE ... WHERE is spelled alike on both databases, but
# each dialect has its own construct for it.
_CLAIM = {
    "postgresql": _claim_statement(postgresql.insert),
    "sqlite": _claim_statement(sqlite.insert),
}
_RECORD_ID = (
    IdempotencyKey.caller_id == bindparam("record_caller"),
    IdempotencyKey.key == bindparam("record_key"),
)
# Still held by this request: not answered yet, and not taken over by another.
_HELD = (
    *_RECORD_ID,
    IdempotencyKey.claimed_by == bindparam("holder"),
    IdempotencyKey.status_code.is_(None),
)
_FIND_RECORD = select(
    IdempotencyKey.fingerprint,
    IdempotencyKey.status_code,
    IdempotencyKey.body,
    IdempotencyKey.headers,
).where(*_RECORD_ID, IdempotencyKey.expires_at > bindparam("now"))
_COMPLETE_RECORD = (
    update(IdempotencyKey)
    .where(*_HELD)
    .values(
        status_code=bindparam("response_status"),
        body=bindparam("response_body"),
        headers=bindparam("response_headers"),
        locked_until=None,
    )
)
_RELEASE_RECORD = delete(IdempotencyKey).where(*_HELD)
_PURGE_RECORDS = delete(IdempotencyKey).where(IdempotencyKey.expires_at <= bindparam("now"))


class IdempotencyKeyRepository(Generic[S]):
    """Requests made with an Idempotency-Key, per caller (see app.api.idempotency)."""

    def __init__(self, session: S) -> None:
        self.session: S = session

    async def claim(
        self: "IdempotencyKeyRepository[SingleWrite]",
        caller_id: int,
        key: str,
        fingerprint: str,
        *,
        claimed_by: str,
        now: datetime,
        expires_at: datetime,
        locked_until: datetime,
    ) -> bool:
        """Record the key as held by the request `claimed_by`, now starting; False if
        another request holds it or answered it already."""
        params = {
            "record_caller": caller_id,
            "record_key": key,
            "new_fingerprint": fingerprint,
            "new_expires_at": expires_at,
            "new_locked_until": locked_until,
            "new_claimed_by": claimed_by,
            "now": now,
        }
        result = await self.session.write(_CLAIM[self.session.dialect], params)
        return result.first() is not None

    async def find(self, caller_id: int, key: str, *, now: datetime) -> IdempotencyRecord | None:
        params = {"record_caller": caller_id, "record_key": key, "now": now}
        row = (await self.session.execute(_FIND_RECORD, params)).one_or_none()
        return IdempotencyRecord(*row) if row else None

    async def complete(
        self: "IdempotencyKeyRepository[Transaction]",
        caller_id: int,
        key: str,
        *,
        claimed_by: str,
        status_code: int,
        body: str,
        headers: str,
    ) -> bool:
        """Record the response of the request that holds the key; False (nothing
        recorded) if its hold lapsed and another request took the key over."""
        params = {
            "record_caller": caller_id,
            "record_key": key,
            "holder": claimed_by,
            "response_status": status_code,
            "response_body": body,
            "response_headers": headers,
        }
        result = await self.session.write(_COMPLETE_RECORD, params)
        return cast(CursorResult[Any], result).rowcount > 0

    async def release(
        self: "IdempotencyKeyRepository[SingleWrite]", caller_id: int, key: str, claimed_by: str
    ) -> None:
        """Forget a key whose request failed, if that request still holds it: a retry
        runs it again."""
        params = {"record_caller": caller_id, "record_key": key, "holder": claimed_by}
        await self.session.write(_RELEASE_RECORD, params)

    async def purge(self: "IdempotencyKeyRepository[SingleWrite]", *, now: datetime) -> int:
        result = await self.session.write(_PURGE_RECORDS, {"now": now})
        return cast(CursorResult[Any], result).rowcount
