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

    async def add(self, *, email: str, hashed_password: str) -> User:
        """Insert a user; the unique constraint, not a prior look-up, decides duplicates."""
        user = User(email=email, hashed_password=hashed_password, items=[])
        self.session.add(user)
        try:
            await self.session.flush()
        except IntegrityError as error:
            if violated_constraint(error) == "unique":
                raise EmailAlreadyRegistered from error
            raise
        return user

    async def get_with_items(self, user_id: int) -> User | None:
        statement = select(User).where(User.id == user_id).options(selectinload(User.items))
        return (await self.session.scalars(statement)).one_or_none()

    async def list_with_items(self, *, skip: int, limit: int) -> Sequence[User]:
        statement = (
            select(User)
            .options(selectinload(User.items))
            .order_by(User.id)
            .offset(skip)
            .limit(limit)
        )
        return (await self.session.scalars(statement)).all()


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

    async def list(self, *, skip: int, limit: int) -> Sequence[Item]:
        statement = select(Item).order_by(Item.id).offset(skip).limit(limit)
        return (await self.session.scalars(statement)).all()
