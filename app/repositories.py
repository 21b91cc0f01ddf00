"""The only place SQL is written: `select()`s on the mapped models, per aggregate."""

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from app.errors import EmailAlreadyRegistered, UserNotFound, violated_constraint
from app.models import Item, User


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

    async def get(self, user_id: int) -> User | None:
        return await self.session.scalar(select(User).where(User.id == user_id))

    async def get_by_email(self, email: str) -> User | None:
        return await self.session.scalar(select(User).where(User.email == email))

    async def get_with_items(self, user_id: int) -> User | None:
        statement = select(User).where(User.id == user_id).options(selectinload(User.items))
        return await self.session.scalar(statement)

    async def list_with_items(self, *, skip: int, limit: int) -> Sequence[User]:
        statement = (
            select(User)
            .options(selectinload(User.items))
            .order_by(User.id)
            .offset(skip)
            .limit(limit)
        )
        return (await self.session.scalars(statement)).all()

    async def delete(self, user: User) -> None:
        """Delete the user; the database's ON DELETE CASCADE removes its items
        (the relationship's passive_deletes keeps the ORM from loading them)."""
        await self.session.delete(user)
        await self.session.flush()


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

    async def list(
        self,
        *,
        skip: int,
        limit: int,
        owner_id: int | None = None,
        title_contains: str | None = None,
    ) -> Sequence[Item]:
        statement = select(Item).order_by(Item.id).offset(skip).limit(limit)
        if owner_id is not None:
            statement = statement.where(Item.owner_id == owner_id)
        if title_contains:
            # autoescape: a % or _ in the search text matches itself.
            statement = statement.where(Item.title.icontains(title_contains, autoescape=True))
        return (await self.session.scalars(statement)).all()

    async def save(self, item: Item) -> None:
        await self.session.flush()

    async def delete(self, item: Item) -> None:
        await self.session.delete(item)
        await self.session.flush()
