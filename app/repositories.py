"""The only place SQL is written: `select()`s on the mapped models, per aggregate.

Writes go through ORM entities. Reads that only feed a response select the
columns it shows, user and items in one round trip, and return plain dicts in the
response's shape: no entity is built, nothing can lazy-load.
"""

from collections.abc import Sequence
from typing import Any, TypedDict, TypeVar, cast

from sqlalchemy import CursorResult, Delete, Select, bindparam, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from app.batching import Coalescer
from app.errors import (
    EmailAlreadyRegistered,
    ItemNotFound,
    NotFound,
    UserNotFound,
    violated_constraint,
)
from app.models import Item, User
from app.schemas import Page


class ItemView(TypedDict):
    title: str
    description: str | None
    id: int
    owner_id: int


class UserView(TypedDict):
    email: str
    id: int
    is_active: bool
    items: list[ItemView]


_ITEM_COLUMNS = (Item.title, Item.description, Item.id, Item.owner_id)
S = TypeVar("S", bound=Select[*tuple[Any, ...]])


def _paged(statement: S, page: Page, id_column: Any) -> S:
    if page.after is not None:
        statement = statement.where(id_column > page.after)
    return statement.order_by(id_column).offset(page.skip).limit(page.limit)


def _users_with_items(rows: Sequence[Any]) -> list[UserView]:
    """Rows of (user id, email, is_active, item columns...), ordered by user then item."""
    users: list[UserView] = []
    for user_id, email, is_active, title, description, item_id in rows:
        if not users or users[-1]["id"] != user_id:
            users.append({"email": email, "id": user_id, "is_active": is_active, "items": []})
        if item_id is not None:
            users[-1]["items"].append(
                {"title": title, "description": description, "id": item_id, "owner_id": user_id}
            )
    return users


# Built once: a statement object reused across requests keeps its cache key.
_USERS_WITH_ITEMS = (
    select(User.id, User.email, User.is_active, Item.title, Item.description, Item.id)
    .outerjoin(User.items)
    .where(User.id.in_(bindparam("user_ids", expanding=True)))
    .order_by(User.id, Item.id)
)


def _padded(ids: list[int]) -> list[int]:
    # IN lists of 1, 2, 4, ... 2^n ids (the last one repeated): a handful of
    # distinct statements, so each connection's prepared statements stay few.
    size = 1 << max(len(ids) - 1, 0).bit_length()
    return ids + ids[-1:] * (size - len(ids))


class UserRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, *, email: str, hashed_password: str, is_superuser: bool = False) -> User:
        """Insert a user; the unique constraint, not a prior look-up, decides duplicates."""
        user = User(
            email=email, hashed_password=hashed_password, is_superuser=is_superuser, items=[]
        )
        self.session.add(user)
        await self._flush()
        return user

    async def save(self, user: User) -> None:
        """Write the changes made to `user` (an email may now be taken)."""
        await self._flush()

    async def _flush(self) -> None:
        try:
            await self.session.flush()
        except IntegrityError as error:
            if violated_constraint(error) == "unique":
                raise EmailAlreadyRegistered from error
            raise
        except StaleDataError as error:  # deleted meanwhile: the UPDATE matched no row
            raise UserNotFound from error

    async def get(self, user_id: int) -> User | None:
        return await self.session.scalar(select(User).where(User.id == user_id))

    async def get_by_email(self, email: str) -> User | None:
        return await self.session.scalar(select(User).where(User.email == email))

    async def view(self, user_id: int) -> UserView | None:
        """The user and its items, as a response shows them; one query."""
        return (await self.views([user_id])).get(user_id)

    async def views(self, user_ids: list[int]) -> dict[int, UserView]:
        """Several users with their items, by id; one query."""
        if not user_ids:
            return {}
        params = {"user_ids": _padded(sorted(set(user_ids)))}
        rows = (await self.session.execute(_USERS_WITH_ITEMS, params)).all()
        return {user["id"]: user for user in _users_with_items(rows)}

    async def list_views(self, page: Page) -> list[UserView]:
        """A page of users, each with its items; one query."""
        users = _paged(select(User.id, User.email, User.is_active), page, User.id).subquery()
        statement = (
            select(users, Item.title, Item.description, Item.id)
            .outerjoin(Item, Item.owner_id == users.c.id)
            .order_by(users.c.id, Item.id)
        )
        return _users_with_items((await self.session.execute(statement)).all())

    async def delete(self, user: User) -> None:
        """Delete the user; the database's ON DELETE CASCADE removes its items."""
        await _delete_one(self.session, delete(User).where(User.id == user.id), UserNotFound)


class ItemRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add_for_owner(self, owner_id: int, *, title: str, description: str | None) -> Item:
        item = Item(owner_id=owner_id, title=title, description=description)
        self.session.add(item)
        try:
            await self.session.flush()
        except IntegrityError as error:
            # The owner does not exist (or was deleted meanwhile): the foreign key,
            # not a prior look-up, is what refuses orphan items.
            if violated_constraint(error) == "foreign_key":
                raise UserNotFound from error
            raise
        return item

    async def get(self, item_id: int) -> Item | None:
        return await self.session.scalar(select(Item).where(Item.id == item_id))

    async def list_views(
        self, page: Page, *, owner_id: int | None = None, title_contains: str | None = None
    ) -> list[ItemView]:
        statement = select(*_ITEM_COLUMNS)
        if owner_id is not None:
            statement = statement.where(Item.owner_id == owner_id)
        if title_contains:
            # autoescape: a % or _ in the search text matches itself.
            statement = statement.where(Item.title.icontains(title_contains, autoescape=True))
        rows = await self.session.execute(_paged(statement, page, Item.id))
        return [
            {"title": title, "description": description, "id": item_id, "owner_id": owner_id}
            for title, description, item_id, owner_id in rows
        ]

    async def save(self, item: Item) -> None:
        try:
            await self.session.flush()
        except StaleDataError as error:  # deleted meanwhile: the UPDATE matched no row
            raise ItemNotFound from error

    async def delete(self, item: Item) -> None:
        await _delete_one(self.session, delete(Item).where(Item.id == item.id), ItemNotFound)


async def _delete_one(session: AsyncSession, statement: Delete, missing: type[NotFound]) -> None:
    # A DELETE that matches nothing lost a race with another DELETE: that one gets
    # the 204, this one the 404.
    result = await session.execute(statement, execution_options={"synchronize_session": False})
    if cast(CursorResult[Any], result).rowcount == 0:
        raise missing


def user_view_loader(
    sessions: async_sessionmaker[AsyncSession], *, max_batch: int
) -> Coalescer[int, UserView]:
    """User views by id for concurrent requests: one session and one query per batch."""

    async def fetch(user_ids: list[int]) -> dict[int, UserView]:
        async with sessions() as session:
            return await UserRepository(session).views(user_ids)

    return Coalescer(fetch, max_batch=max_batch)
