"""Users: accounts, their views (with their items), and who is asking (the principal)."""

from collections.abc import Callable, Hashable
from contextlib import AbstractAsyncContextManager
from functools import cache
from typing import Any, Generic, cast

from sqlalchemy import CursorResult, Select, bindparam, delete, insert, select
from sqlalchemy.orm.exc import StaleDataError

from app.domain.policy import PRINCIPAL_COLUMNS, Principal
from app.domain.repositories.common import (
    PageOfViews,
    S,
    page_of,
    page_params,
    paged,
    refused_for,
)
from app.domain.schemas import USER_VIEW, Page, ViewDict
from app.platform.batching import Coalescer
from app.platform.errors import EmailAlreadyRegistered, UserNotFound
from app.platform.models import Item, User
from app.platform.sessions import ReadSession, SingleWrite, Transaction


def _padded(ids: list[int]) -> list[int]:
    # IN lists of 1, 2, 4, ... 2^n ids (the last one repeated): a handful of
    # distinct statements, so each connection's prepared statements stay few.
    size = 1 << max(len(ids) - 1, 0).bit_length()
    return ids + ids[-1:] * (size - len(ids))


_PRINCIPAL = select(*PRINCIPAL_COLUMNS).where(User.id == bindparam("user_id"))
_USER_BY_ID = select(User).where(User.id == bindparam("user_id"))
_USER_BY_ID_LOCKED = _USER_BY_ID.with_for_update()
_USER_BY_EMAIL = select(User).where(User.email == bindparam("email"))
_USER_VIEWS = (
    select(*USER_VIEW.joined_columns())
    .outerjoin(Item, Item.owner_id == User.id)
    .where(User.id.in_(bindparam("user_ids", expanding=True)))
    .order_by(User.id, Item.id)
)
_ADD_USER = insert(User).returning(*USER_VIEW.columns)
_DELETE_USER = delete(User).where(User.id == bindparam("user_id"))


@cache
def _user_page(*, after: bool) -> Select[*tuple[Any, ...]]:
    page_of_users = paged(select(User.id), User.id, after=after).subquery()
    return (
        select(*USER_VIEW.joined_columns())
        .join(page_of_users, page_of_users.c.id == User.id)
        .outerjoin(Item, Item.owner_id == User.id)
        .order_by(User.id, Item.id)
    )


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

    async def list_views(self, page: Page) -> PageOfViews:
        """A page of users, each with its items; one query."""
        statement = _user_page(after=page.after is not None)
        rows = (await self.session.execute(statement, page_params(page))).all()
        return page_of(USER_VIEW.of_joined_rows(rows), page)

    async def add(
        self: "UserRepository[SingleWrite] | UserRepository[Transaction]",
        *,
        email: str,
        hashed_password: str,
        is_superuser: bool = False,
    ) -> ViewDict:
        """Insert a user; the unique constraint, not a prior look-up, decides duplicates."""
        values = {"email": email, "hashed_password": hashed_password, "is_superuser": is_superuser}
        with refused_for("unique", EmailAlreadyRegistered):
            row = (await self.session.write(_ADD_USER, values)).one()
        return USER_VIEW.of_row(row)

    async def get(
        self: "UserRepository[Transaction]", user_id: int, *, lock: bool = False
    ) -> User | None:
        """The account, to change. `lock` holds its row until the transaction ends, so
        that a change checked against its current state (If-Match) cannot interleave
        with another (PostgreSQL; SQLite runs one writer at a time anyway)."""
        statement = _USER_BY_ID_LOCKED if lock else _USER_BY_ID
        return await self.session.entity(statement, {"user_id": user_id})

    async def get_by_email(self: "UserRepository[Transaction]", email: str) -> User | None:
        return await self.session.entity(_USER_BY_EMAIL, {"email": email})

    async def save(self: "UserRepository[Transaction]", user: User) -> None:
        """Write the changes made to `user` (an email may now be taken)."""
        try:
            with refused_for("unique", EmailAlreadyRegistered):
                await self.session.flush()
        except StaleDataError as error:  # deleted meanwhile: the UPDATE matched no row
            raise UserNotFound from error

    async def delete(self: "UserRepository[Transaction]", user_id: int) -> None:
        """Delete the user; the database's ON DELETE CASCADE removes its items."""
        # A DELETE that matches nothing lost a race with another DELETE: that one gets
        # the 204, this one the 404.
        result = await self.session.write(_DELETE_USER, {"user_id": user_id})
        if cast(CursorResult[Any], result).rowcount == 0:
            raise UserNotFound


# Where a batch of user look-ups reads: a key of the caller's (a replica, or None for
# the primary), and how to open a read there.
Target = Hashable
OpenRead = Callable[[Any], AbstractAsyncContextManager[ReadSession]]


def user_view_loader(
    open_read: OpenRead, *, max_batch: int
) -> Coalescer[tuple[Target, int], ViewDict]:
    """User views by (where to read, id) for concurrent requests: one session and one
    query per batch and place."""

    async def fetch(keys: list[tuple[Target, int]]) -> dict[tuple[Target, int], ViewDict]:
        by_target: dict[Target, list[int]] = {}
        for target, user_id in keys:
            by_target.setdefault(target, []).append(user_id)
        found: dict[tuple[Target, int], ViewDict] = {}
        for target, user_ids in by_target.items():
            async with open_read(target) as session:
                views = await UserRepository(session).views(user_ids)
            found.update(((target, user_id), view) for user_id, view in views.items())
        return found

    return Coalescer(fetch, max_batch=max_batch)


class UserViews:
    """Users with their items by id, read in one place (a replica, or the primary): the
    look-ups of concurrent requests are answered by one query."""

    __slots__ = ("_loader", "_target")

    def __init__(self, loader: Coalescer[tuple[Target, int], ViewDict], target: Target) -> None:
        self._loader = loader
        self._target = target

    async def get(self, user_id: int) -> ViewDict | None:
        return await self._loader.get((self._target, user_id))
