"""The only place SQL is written: statements on the mapped models, per aggregate.

Two kinds of statement, by what the caller needs:

- an entity to change (a user whose email changes, an item being edited): ORM
  `select(User)`, changed attributes, flush;
- data that only feeds a response or a check (views, the token's user, a new
  item's id): Core statements on the models' tables, selecting the columns
  needed. No entity is built, nothing can lazy-load, and the ORM's statement
  processing is skipped (measured: about half the cost of a request that writes
  one item). Views come back as plain dicts in the response's shape.
"""

from collections.abc import Sequence
from typing import Any, NamedTuple, TypedDict, TypeVar, cast

from sqlalchemy import (
    CursorResult,
    Delete,
    Select,
    Table,
    bindparam,
    delete,
    exists,
    insert,
    or_,
    select,
)
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


class Principal(NamedTuple):
    """What authorising a request needs to know of the token's user."""

    id: int
    is_active: bool
    is_superuser: bool


class UserView(TypedDict):
    email: str
    id: int
    is_active: bool
    items: list[ItemView]


users = cast(Table, User.__table__)
items = cast(Table, Item.__table__)
# An item as a view shows it; beside its user (whose id is its owner_id), or alone.
_ITEM_IN_USER = (items.c.title, items.c.description, items.c.id)
_ITEM_COLUMNS = (*_ITEM_IN_USER, items.c.owner_id)
S = TypeVar("S", bound=Select[*tuple[Any, ...]])


def _paged(statement: S, page: Page, id_column: Any) -> S:
    if page.after is not None:
        statement = statement.where(id_column > page.after)
    return statement.order_by(id_column).offset(page.skip).limit(page.limit)


def _users_with_items(rows: Sequence[Any]) -> list[UserView]:
    """Rows of (user id, email, is_active, item columns...), ordered by user then item."""
    views: list[UserView] = []
    for user_id, email, is_active, title, description, item_id in rows:
        if not views or views[-1]["id"] != user_id:
            views.append({"email": email, "id": user_id, "is_active": is_active, "items": []})
        if item_id is not None:
            views[-1]["items"].append(
                {"title": title, "description": description, "id": item_id, "owner_id": user_id}
            )
    return views


# Statements built once: no expression building on every request.
_USER_BY_ID = select(User).where(User.id == bindparam("user_id"))
_USER_BY_EMAIL = select(User).where(User.email == bindparam("email"))
_ITEM_BY_ID = select(Item).where(Item.id == bindparam("item_id"))
_PRINCIPAL = select(users.c.id, users.c.is_active, users.c.is_superuser).where(
    users.c.id == bindparam("user_id")
)
# The item, if the actor may write it: an active user who is its owner, or an
# active superuser. Check and write in one statement, so atomic together.
_INSERT_ITEM_AS = (
    insert(items)
    .from_select(
        ["title", "description", "owner_id"],
        select(bindparam("title"), bindparam("description"), bindparam("owner_id")).where(
            exists().where(
                users.c.id == bindparam("actor_id"),
                users.c.is_active,
                or_(users.c.id == bindparam("owner_id"), users.c.is_superuser),
            )
        ),
    )
    .returning(items.c.id)
)
_USERS_WITH_ITEMS = (
    select(users.c.id, users.c.email, users.c.is_active, *_ITEM_IN_USER)
    .select_from(users.outerjoin(items, items.c.owner_id == users.c.id))
    .where(users.c.id.in_(bindparam("user_ids", expanding=True)))
    .order_by(users.c.id, items.c.id)
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
        return await self.session.scalar(_USER_BY_ID, {"user_id": user_id})

    async def get_by_email(self, email: str) -> User | None:
        return await self.session.scalar(_USER_BY_EMAIL, {"email": email})

    async def principal(self, user_id: int) -> Principal | None:
        row = (await self.session.execute(_PRINCIPAL, {"user_id": user_id})).one_or_none()
        return Principal(*row) if row else None

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
        page_of_users = _paged(
            select(users.c.id, users.c.email, users.c.is_active), page, users.c.id
        ).subquery()
        statement = (
            select(page_of_users, *_ITEM_IN_USER)
            .select_from(page_of_users.outerjoin(items, items.c.owner_id == page_of_users.c.id))
            .order_by(page_of_users.c.id, items.c.id)
        )
        return _users_with_items((await self.session.execute(statement)).all())

    async def delete(self, user_id: int) -> None:
        """Delete the user; the database's ON DELETE CASCADE removes its items."""
        await _delete_one(self.session, delete(users).where(users.c.id == user_id), UserNotFound)


class ItemRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add_as(
        self, actor_id: int, owner_id: int, *, title: str, description: str | None
    ) -> ItemView | None:
        """Create an item for `owner_id` if `actor_id` may (is that user, or a superuser,
        and active): one INSERT ... SELECT, so the check and the write are atomic.
        None when the actor may not; UserNotFound when the owner does not exist."""
        values = {
            "title": title,
            "description": description,
            "owner_id": owner_id,
            "actor_id": actor_id,
        }
        try:
            item_id = (await self.session.execute(_INSERT_ITEM_AS, values)).scalar_one_or_none()
        except IntegrityError as error:
            # The owner does not exist (or was deleted meanwhile): the foreign key,
            # not a prior look-up, is what refuses orphan items.
            if violated_constraint(error) == "foreign_key":
                raise UserNotFound from error
            raise
        if item_id is None:
            return None
        return {"title": title, "description": description, "id": item_id, "owner_id": owner_id}

    async def get(self, item_id: int) -> Item | None:
        return await self.session.scalar(_ITEM_BY_ID, {"item_id": item_id})

    async def list_views(
        self, page: Page, *, owner_id: int | None = None, title_contains: str | None = None
    ) -> list[ItemView]:
        statement = select(*_ITEM_COLUMNS)
        if owner_id is not None:
            statement = statement.where(items.c.owner_id == owner_id)
        if title_contains:
            # autoescape: a % or _ in the search text matches itself.
            statement = statement.where(items.c.title.icontains(title_contains, autoescape=True))
        rows = await self.session.execute(_paged(statement, page, items.c.id))
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
        await _delete_one(self.session, delete(items).where(items.c.id == item.id), ItemNotFound)


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
