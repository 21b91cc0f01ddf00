"""Retried POSTs: a request with an Idempotency-Key runs once; its retries get its response.

The first request with a key claims it (a record committed at once, naming that
request). Its write then runs in a transaction that also stores the response the
route returns, so the write and the record of it commit together or not at all. A
retry with the same key and the same request gets that response again, with
`Idempotent-Replayed: true` and the headers it had, and writes nothing; with a
different request it gets 422; while the first still runs, 409. "The same request"
is the same method, path and JSON body, whatever its whitespace or key order.

A request that fails releases its key: a retry runs anew. One that cannot (its
database went away, its process was killed) holds the key for
IDEMPOTENCY_KEY_LEASE at most; then a retry takes it over. Should the first request
still be running then, it can no longer record its response, so its transaction
rolls back (409): whichever request records the response is the one whose write is
kept, exactly once. Keys belong to a caller (the token's user; for sign-up, the key
alone) and are remembered for IDEMPOTENCY_KEY_TTL. Without the header, the route
runs as the SingleWrite it is.
"""

import contextlib
import hashlib
import logging
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Annotated

import orjson
from fastapi import Depends, Header, Request, Response
from fastapi.exceptions import RequestValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from app.api.dependencies import app_state, written
from app.api.errors import EarlyResponse
from app.domain.repositories.idempotency_keys import IdempotencyKeyRepository, IdempotencyRecord
from app.domain.security import InvalidToken
from app.platform.errors import IdempotencyKeyInUse
from app.platform.sessions import SingleWrite, Transaction

log = logging.getLogger("app.idempotency")
KEY_PATTERN = r"^[\x20-\x7e]+$"  # printable ASCII
# The response headers a replay repeats.
REPLAYED_HEADERS = ("etag", "location")


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
        return app_state(request).tokens.bearer(token).user_id
    except InvalidToken:
        return 0


def _fingerprint(method: str, path: str, body: bytes) -> str:
    """What the request means: its method, path and JSON body with keys sorted and
    no whitespace (a body that is no JSON counts as its bytes: it is refused anyway)."""
    with contextlib.suppress(orjson.JSONDecodeError):
        body = orjson.dumps(orjson.loads(body), option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(b"%s %s\n%s" % (method.encode(), path.encode(), body)).hexdigest()


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
    headers: dict[str, str] = orjson.loads(record.headers) if record.headers else {}
    return EarlyResponse(
        Response(
            record.body,
            status_code=record.status_code,
            media_type="application/json",
            headers={**headers, "Idempotent-Replayed": "true"},
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
    sessions = app_state(request).sessions
    if idempotency_key is None:  # the fast path: one statement, no record
        async with sessions.statements() as session:
            yield IdempotentWrite(session)
        await written(request)
        return

    caller_id = _caller_id(request)
    fingerprint = _fingerprint(request.method, request.url.path, await request.body())
    settings = app_state(request).settings
    claimed_by = secrets.token_hex(16)
    now = datetime.now(UTC)
    async with sessions.single_write() as write:
        keys = IdempotencyKeyRepository(write)
        if not await keys.claim(
            caller_id,
            idempotency_key,
            fingerprint,
            claimed_by=claimed_by,
            now=now,
            expires_at=now + timedelta(seconds=settings.idempotency_key_ttl),
            locked_until=now + timedelta(seconds=settings.idempotency_key_lease),
        ):
            answer = _replay(await keys.find(caller_id, idempotency_key, now=now), fingerprint)
            if isinstance(answer, EarlyResponse):  # what it replays was written by now
                await written(request)
            raise answer

    recorded = False
    try:
        async with sessions.transactions.begin() as session:
            write = IdempotentWrite(session)
            yield write
            response = write.response
            if response is None:
                raise RuntimeError("an idempotent route returns through write.replayable()")
            headers = {
                name: response.headers[name]
                for name in REPLAYED_HEADERS
                if name in response.headers
            }
            if not await IdempotencyKeyRepository(Transaction(session)).complete(
                caller_id,
                idempotency_key,
                claimed_by=claimed_by,
                status_code=response.status_code,
                body=bytes(response.body).decode(),
                headers=orjson.dumps(headers).decode(),
            ):
                # Our hold lapsed and a retry took the key over: its write is the one
                # kept, this one rolls back.
                raise IdempotencyKeyInUse(retry_after=1)
        recorded = True
    finally:
        if not recorded:
            await _release(request, caller_id, idempotency_key, claimed_by)
    await written(request)


async def _release(request: Request, caller_id: int, key: str, claimed_by: str) -> None:
    try:
        async with app_state(request).sessions.single_write() as write:
            await IdempotencyKeyRepository(write).release(caller_id, key, claimed_by)
    except Exception:  # the request's own error is the one to report
        lease = app_state(request).settings.idempotency_key_lease
        log.warning("could not release an idempotency key; a retry may take it after %g s", lease)


# A SingleWrite that an Idempotency-Key makes safe to retry; closed (and committed)
# before the response is sent, as the other units of work (app.api.dependencies).
IdempotentWriteDep = Annotated[IdempotentWrite, Depends(idempotent_write, scope="function")]
