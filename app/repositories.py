"""The only place SQL is written: statements on the mapped models, per aggregate.

A repository works in the session of the route that made it (app.db), and each
method says with the type of its `self` which kinds of session it needs: reads
run in any; a statement that writes needs a SingleWrite or a Transaction; an
entity loaded to be changed, and its changes, need a Transaction. Calling a
method on the wrong kind is a type error, caught before anything runs.

What only feeds a response or a check is selected column by column, as the view
declares it (app.views): no entity is built, nothing can lazy-load.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import cache
from typing import Any, Generic, NamedTuple, TypeVar, cast

from sqlalchemy import (
    BindParameter,
    CursorResult,
    Integer,
    Select,
    String,
    Update,
    and_,
    bindparam,
    case,
    delete,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError

from app.batching import Coalescer
from app.db import ReadSession, Sessions, SingleWrite, Transaction
from app.errors import (
    ConstraintKind,
    DomainError,
    EmailAlreadyRegistered,
    UserNotFound,
    violated_constraint,
)
from app.models import IdempotencyKey, Item, LoginFailures, User
from app.policy import PRINCIPAL_COLUMNS, Principal, may_act_for
from app.schemas import Page
from app.security import Bearer
from app.views import ITEM_VIEW, USER_VIEW, ViewDict

S = TypeVar("S", Transaction, SingleWrite, ReadSession)
Q = TypeVar("Q", bound=Select[*tuple[Any, ...]])


def _paged(statement: Q, id_column: Any, *, after: bool) -> Q:
    """`statement` ordered by `id_column`, a page of it: bind parameters `skip` and
    `limit`, and `after` when `after` is set (keyset)."""
    if after:
        statement = statement.where(id_column > bindparam("after", type_=Integer))
    return (
        statement.order_by(id_column)
        .offset(bindparam("skip", type_=Integer))
        .limit(bindparam("limit", type_=Integer))
    )


def _page_params(page: Page) -> dict[str, Any]:
    params: dict[str, Any] = {"skip": page.skip, "limit": page.limit}
    if page.after is not None:
        params["after"] = page.after
    return params


@contextmanager
def _refused_for(kind: ConstraintKind, error: type[DomainError]) -> Iterator[None]:
    """The database refusing a write for a `kind` of constraint, as `error`."""
    try:
        yield
    except IntegrityError as refused:
        if violated_constraint(refused) == kind:
            raise error from refused
        raise


def _padded(ids: list[int]) -> list[int]:
    # IN lists of 1, 2, 4, ... 2^n ids (the last one repeated): a handful of
    # distinct statements, so each connection's prepared statements stay few.
    size = 1 << max(len(ids) - 1, 0).bit_length()
    return ids + ids[-1:] * (size - len(ids))


# Statements built once: no expression building on every request.
_PRINCIPAL = select(*PRINCIPAL_COLUMNS).where(User.id == bindparam("user_id"))
_USER_BY_ID = select(User).where(User.id == bindparam("user_id"))
_USER_BY_EMAIL = select(User).where(User.email == bindparam("email"))
_USER_VIEWS = (
    select(*USER_VIEW.joined_columns())
    .outerjoin(Item, Item.owner_id == User.id)
    .where(User.id.in_(bindparam("user_ids", expanding=True)))
    .order_by(User.id, Item.id)
)
_ADD_USER = insert(User).returning(*USER_VIEW.columns)
_DELETE_USER = delete(User).where(User.id == bindparam("user_id"))
_LOCK_USER = select(User.id).where(User.id == bindparam("user_id")).with_for_update()
_ITEM_VIEW = select(*ITEM_VIEW.columns).where(Item.id == bindparam("item_id"))
# The bearer as bind parameters, for the policy's SQL form.
_BEARER: tuple[BindParameter[int], BindParameter[int]] = (
    bindparam("caller_id"),
    bindparam("token_version"),
)
# The item, if the caller may create it for its owner (app.policy): the check and
# the write in one statement, so atomic together.
_ADD_ITEM_AS = (
    insert(Item)
    .from_select(
        ["title", "description", "owner_id"],
        select(bindparam("title"), bindparam("description"), bindparam("owner_id")).where(
            may_act_for(_BEARER, bindparam("owner_id"))
        ),
    )
    .returning(*ITEM_VIEW.columns)
)
# The item, if the caller may change it (and, with If-Match, it is at that version).
_ITEM_AS = (Item.id == bindparam("item_id"), may_act_for(_BEARER, Item.owner_id))
_AT_VERSIONS = Item.version.in_(bindparam("versions", expanding=True))
_DELETE_ITEM_AS = delete(Item).where(*_ITEM_AS)
_DELETE_ITEM_AS_IF = _DELETE_ITEM_AS.where(_AT_VERSIONS)


@cache
def _update_item_as(fields: frozenset[str], if_match: bool) -> Update:
    # One statement per set of fields sent (a handful), built once.
    values: dict[str, Any] = {field: bindparam(field) for field in sorted(fields)}
    # A change increments the version; an empty one leaves the item as it is.
    values["version"] = Item.version + 1 if fields else Item.version
    statement = update(Item).where(*_ITEM_AS).values(values).returning(*ITEM_VIEW.columns)
    return statement.where(_AT_VERSIONS) if if_match else statement


_LIKE_ESCAPE = "/"


# Pages: one statement per combination of filters (a handful), built once; the
# values are bind parameters. Building them per request cost 0.1-0.3 ms.
@cache
def _user_page(*, after: bool) -> Select[*tuple[Any, ...]]:
    page_of_users = _paged(select(User.id), User.id, after=after).subquery()
    return (
        select(*USER_VIEW.joined_columns())
        .join(page_of_users, page_of_users.c.id == User.id)
        .outerjoin(Item, Item.owner_id == User.id)
        .order_by(User.id, Item.id)
    )


@cache
def _item_page(*, owner: bool, title: bool, after: bool) -> Select[*tuple[Any, ...]]:
    statement = select(*ITEM_VIEW.columns)
    if owner:
        statement = statement.where(Item.owner_id == bindparam("owner_id"))
    if title:
        pattern = bindparam("title_contains", type_=String)
        statement = statement.where(Item.title.icontains(pattern, escape=_LIKE_ESCAPE))
    return _paged(statement, Item.id, after=after)


def _escape_like(text: str) -> str:
    """`text` matched literally by LIKE ... ESCAPE '/'."""
    for special in (_LIKE_ESCAPE, "%", "_"):
        text = text.replace(special, _LIKE_ESCAPE + special)
    return text


def _bearer_params(bearer: Bearer) -> dict[str, int]:
    return {"caller_id": bearer.user_id, "token_version": bearer.token_version}


class UserRepository(Generic[S]):
    def __init__(self, session: S) -> None:
        self.session: S = session

    async def principal(self, user_id: int) -> Principal | None:
        row = (await self.session.execute(_PRINCIPAL, {"user_id": user_id})).one_or_none()
        return Principal(*row) if row else None

    async def view(self, user_id: int) -> ViewDict | None:
        """The user and its items, as a response shows them; one query."""
        return (await self.views([user_id])).get(user_id)

    async def views(self, user_ids: list[int]) -> dict[int, ViewDict]:
        """Several users with their items, by id; one query."""
        if not user_ids:
            return {}
        params = {"user_ids": _padded(sorted(set(user_ids)))}
        rows = (await self.session.execute(_USER_VIEWS, params)).all()
        return {user["id"]: user for user in USER_VIEW.of_joined_rows(rows)}

    async def list_views(self, page: Page) -> list[ViewDict]:
        """A page of users, each with its items; one query."""
        statement = _user_page(after=page.after is not None)
        rows = (await self.session.execute(statement, _page_params(page))).all()
        return USER_VIEW.of_joined_rows(rows)

    async def add(
        self: "UserRepository[SingleWrite] | UserRepository[Transaction]",
        *,
        email: str,
        hashed_password: str,
        is_superuser: bool = False,
    ) -> ViewDict:
        """Insert a user; the unique constraint, not a prior look-up, decides duplicates."""
        values = {"email": email, "hashed_password": hashed_password, "is_superuser": is_superuser}
        with _refused_for("unique", EmailAlreadyRegistered):
            row = (await self.session.write(_ADD_USER, values)).one()
        return USER_VIEW.of_row(row)

    async def get(self: "UserRepository[Transaction]", user_id: int) -> User | None:
        return await self.session.entity(_USER_BY_ID, {"user_id": user_id})

    async def get_by_email(self: "UserRepository[Transaction]", email: str) -> User | None:
        return await self.session.entity(_USER_BY_EMAIL, {"email": email})

    async def save(self: "UserRepository[Transaction]", user: User) -> None:
        """Write the changes made to `user` (an email may now be taken)."""
        try:
            with _refused_for("unique", EmailAlreadyRegistered):
                await self.session.flush()
        except StaleDataError as error:  # deleted meanwhile: the UPDATE matched no row
            raise UserNotFound from error

    async def lock(self: "UserRepository[Transaction]", user_id: int) -> None:
        """Hold the user's row until the transaction ends: a change checked against its
        current state (If-Match) cannot interleave with another (PostgreSQL; SQLite runs
        one writer at a time anyway)."""
        await self.session.execute(_LOCK_USER, {"user_id": user_id})

    async def delete(self: "UserRepository[Transaction]", user_id: int) -> None:
        """Delete the user; the database's ON DELETE CASCADE removes its items."""
        # A DELETE that matches nothing lost a race with another DELETE: that one gets
        # the 204, this one the 404.
        result = await self.session.write(_DELETE_USER, {"user_id": user_id})
        if cast(CursorResult[Any], result).rowcount == 0:
            raise UserNotFound


class ItemRepository(Generic[S]):
    def __init__(self, session: S) -> None:
        self.session: S = session

    async def view(self, item_id: int) -> ViewDict | None:
        row = (await self.session.execute(_ITEM_VIEW, {"item_id": item_id})).one_or_none()
        return ITEM_VIEW.of_row(row) if row else None

    async def list_views(
        self, page: Page, *, owner_id: int | None = None, title_contains: str | None = None
    ) -> list[ViewDict]:
        params = _page_params(page)
        if owner_id is not None:
            params["owner_id"] = owner_id
        if title_contains:
            # A % or _ in the search text matches itself.
            params["title_contains"] = _escape_like(title_contains)
        statement = _item_page(
            owner=owner_id is not None, title=bool(title_contains), after=page.after is not None
        )
        # all(): the rows in one call, not one Python call per row through the cursor.
        return ITEM_VIEW.of_rows((await self.session.execute(statement, params)).all())

    async def add_as(
        self: "ItemRepository[SingleWrite] | ItemRepository[Transaction]",
        bearer: Bearer,
        owner_id: int,
        *,
        title: str,
        description: str | None,
    ) -> ViewDict | None:
        """Create an item for `owner_id` if the bearer may (app.policy): one INSERT ...
        SELECT, so the check and the write are atomic. None when the caller may not;
        UserNotFound when the owner does not exist."""
        values = {
            "title": title,
            "description": description,
            "owner_id": owner_id,
            **_bearer_params(bearer),
        }
        # The owner does not exist (or was deleted meanwhile): the foreign key, not
        # a prior look-up, is what refuses orphan items.
        with _refused_for("foreign_key", UserNotFound):
            row = (await self.session.write(_ADD_ITEM_AS, values)).one_or_none()
        return ITEM_VIEW.of_row(row) if row else None

    async def update_as(
        self: "ItemRepository[SingleWrite] | ItemRepository[Transaction]",
        bearer: Bearer,
        item_id: int,
        changes: dict[str, Any],
        versions: list[int] | None,
    ) -> ViewDict | None:
        """Change the item if the bearer may (app.policy) and, when `versions` is given,
        it is at one of them: one UPDATE, so check and change are atomic. Its version
        goes up by one when anything changes. None when nothing matched."""
        statement = _update_item_as(frozenset(changes), versions is not None)
        params = {**changes, "item_id": item_id, **_bearer_params(bearer)}
        if versions is not None:
            params["versions"] = versions
        row = (await self.session.write(statement, params)).one_or_none()
        return ITEM_VIEW.of_row(row) if row else None

    async def delete_as(
        self: "ItemRepository[SingleWrite] | ItemRepository[Transaction]",
        bearer: Bearer,
        item_id: int,
        versions: list[int] | None,
    ) -> bool:
        """Delete the item if the bearer may and, when `versions` is given, it is at one
        of them: one DELETE. False when nothing matched."""
        statement = _DELETE_ITEM_AS_IF if versions is not None else _DELETE_ITEM_AS
        params = {"item_id": item_id, "versions": versions, **_bearer_params(bearer)}
        result = await self.session.write(statement, params)
        return cast(CursorResult[Any], result).rowcount > 0


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
    """Requests made with an Idempotency-Key, per caller (see app.idempotency)."""

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


def user_view_loader(sessions: Sessions, *, max_batch: int) -> Coalescer[int, ViewDict]:
    """User views by id for concurrent requests: one session and one query per batch."""

    async def fetch(user_ids: list[int]) -> dict[int, ViewDict]:
        async with sessions.read() as session:
            return await UserRepository(session).views(user_ids)

    return Coalescer(fetch, max_batch=max_batch)
