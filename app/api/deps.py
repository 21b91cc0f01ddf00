"""Dependencies shared by the routes, as `Annotated` aliases that read like the API."""

from typing import Annotated

from fastapi import Depends, Path, Query, Request
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import unit_of_work
from app.repositories import ItemRepository, UserRepository
from app.schemas import MAX_ID, Page
from app.security import PasswordHasher

# scope="function": commit before the response is sent (see app.db.unit_of_work).
SessionDep = Annotated[AsyncSession, Depends(unit_of_work, scope="function")]


def _users(session: SessionDep) -> UserRepository:
    return UserRepository(session)


def _items(session: SessionDep) -> ItemRepository:
    return ItemRepository(session)


def _password_hasher(request: Request) -> PasswordHasher:
    hasher: PasswordHasher = request.app.state.password_hasher
    return hasher


Users = Annotated[UserRepository, Depends(_users)]
Items = Annotated[ItemRepository, Depends(_items)]
Passwords = Annotated[PasswordHasher, Depends(_password_hasher)]
PageDep = Annotated[Page, Query()]
UserId = Annotated[int, Path(ge=1, le=MAX_ID, description="A user's id.")]
