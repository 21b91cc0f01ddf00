"""Retried POSTs: a request with an Idempotency-Key runs once; its retries get its response.

The first request with a key claims it (a record committed at once). Its write
then runs in a transaction that also stores the response the route returns, so the
write and the record of it commit together or not at all. A retry with the same key
and the same request gets that response again, with `Idempotent-Replayed: true`,
and writes nothing; with a different request it gets 422; while the first still
runs, 409. A request that fails releases its key: a retry runs anew. Keys belong to
a caller (the token's user; for sign-up, the key alone) and are remembered for
IDEMPOTENCY_KEY_TTL. Without the header, the route runs as the SingleWrite it is.
"""

import hashlib
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import Header, Request, Response
from fastapi.exceptions import RequestValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import SingleWrite, Transaction
from app.errors import EarlyResponse, IdempotencyKeyInUse
from app.repositories import IdempotencyKeyRepository, IdempotencyRecord
from app.security import InvalidToken
from app.services import services

log = logging.getLogger("app.idempotency")
# How long a first request holds its key: a request that died holding it (its
# process killed) leaves the key to a retry after this.
HOLD = timedelta(seconds=60)
KEY_PATTERN = r"^[\x20-\x7e]+$"  # printable ASCII


class IdempotentWrite(SingleWrite):
    """A SingleWrite whose route returns its response through `replayable`, so that a
    request with an Idempotency-Key can record it beside the write."""

    __slots__ = ("response",)

    def __init__(self, session: AsyncSession) -> None:
        super().__init__(session)
        self.response: Response | None = None

    def replayable(self, response: Response) -> Response:
        self.response = response
        return response


def _caller_id(request: Request) -> int:
    # The route itself authenticates; here the token only scopes the key (0: none).
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        return 0
    try:
        return services(request).tokens.bearer(token).user_id
    except InvalidToken:
        return 0


def _replay(record: IdempotencyRecord | None, fingerprint: str) -> Exception:
    if record is not None and record.fingerprint != fingerprint:
        # A 422 like any other refused input, naming the header.
        return RequestValidationError(
            [
                {
                    "type": "idempotency_key_reused",
                    "loc": ("header", "Idempotency-Key"),
                    "msg": "This Idempotency-Key was used with a different request",
                }
            ]
        )
    if record is None or record.status_code is None or record.body is None:
        return IdempotencyKeyInUse(retry_after=1)  # running (or just released: retry)
    return EarlyResponse(
        Response(
            record.body,
            status_code=record.status_code,
            media_type="application/json",
            headers={"Idempotent-Replayed": "true"},
        )
    )


async def idempotent_write(
    request: Request,
    idempotency_key: Annotated[
        str | None,
        Header(
            min_length=1,
            max_length=255,
            pattern=KEY_PATTERN,
            description="Makes retries safe: a retry with the same key and request "
            "replays the first response (`Idempotent-Replayed: true`) and creates nothing.",
        ),
    ] = None,
) -> AsyncIterator[IdempotentWrite]:
    sessions = services(request).sessions
    if idempotency_key is None:  # the fast path: one statement, no record
        async with sessions.statements() as session:
            yield IdempotentWrite(session)
        return

    caller_id = _caller_id(request)
    request_bytes = b"%s %s\n%s" % (
        request.method.encode(),
        request.url.path.encode(),
        await request.body(),
    )
    fingerprint = hashlib.sha256(request_bytes).hexdigest()
    now = datetime.now(UTC)
    ttl = timedelta(seconds=services(request).settings.idempotency_key_ttl)
    async with sessions.single_write() as write:
        keys = IdempotencyKeyRepository(write)
        if not await keys.claim(
            caller_id,
            idempotency_key,
            fingerprint,
            now=now,
            expires_at=now + ttl,
            locked_until=now + HOLD,
        ):
            raise _replay(await keys.find(caller_id, idempotency_key, now=now), fingerprint)

    recorded = False
    try:
        async with sessions.transactions.begin() as session:
            write = IdempotentWrite(session)
            yield write
            if write.response is None:
                raise RuntimeError("an idempotent route returns through write.replayable()")
            await IdempotencyKeyRepository(Transaction(session)).complete(
                caller_id,
                idempotency_key,
                status_code=write.response.status_code,
                body=bytes(write.response.body).decode(),
            )
        recorded = True
    finally:
        if not recorded:
            await _release(request, caller_id, idempotency_key)


async def _release(request: Request, caller_id: int, key: str) -> None:
    try:
        async with services(request).sessions.single_write() as write:
            await IdempotencyKeyRepository(write).release(caller_id, key)
    except Exception:  # the request's own error is the one to report
        log.warning("could not release an idempotency key; it frees itself after %s", HOLD)
