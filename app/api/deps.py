"""Dependencies shared by the routes, as `Annotated` aliases that read like the API."""

from typing import Annotated, NoReturn, Protocol, TypeVar

from fastapi import Depends, Path, Query, Request
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.ext.asyncio import AsyncSession

from app.batching import Coalescer
from app.db import unit_of_work
from app.errors import Conflict, Forbidden, ItemNotFound, NotAuthenticated
from app.models import Item, User
from app.repositories import ItemRepository, Principal, UserRepository, UserView
from app.schemas import MAX_ID, Page
from app.security import InvalidToken, PasswordHasher, TokenIssuer

# scope="function": commit before the response is sent (see app.db.unit_of_work).
SessionDep = Annotated[AsyncSession, Depends(unit_of_work, scope="function")]


async def _users(session: SessionDep) -> UserRepository:
    return UserRepository(session)


async def _items(session: SessionDep) -> ItemRepository:
    return ItemRepository(session)


async def _password_hasher(request: Request) -> PasswordHasher:
    hasher: PasswordHasher = request.app.state.password_hasher
    return hasher


async def _token_issuer(request: Request) -> TokenIssuer:
    issuer: TokenIssuer = request.app.state.token_issuer
    return issuer


async def _user_views(request: Request) -> Coalescer[int, UserView]:
    views: Coalescer[int, UserView] = request.app.state.user_views
    return views


Users = Annotated[UserRepository, Depends(_users)]
# Users with their items by id, concurrent look-ups batched (see app.batching).
UserViews = Annotated[Coalescer[int, UserView], Depends(_user_views)]
Items = Annotated[ItemRepository, Depends(_items)]
Passwords = Annotated[PasswordHasher, Depends(_password_hasher)]
Tokens = Annotated[TokenIssuer, Depends(_token_issuer)]
PageDep = Annotated[Page, Query()]
UserId = Annotated[int, Path(ge=1, le=MAX_ID, description="A user's id.")]
ItemId = Annotated[int, Path(ge=1, le=MAX_ID, description="An item's id.")]

# Answers 401 with WWW-Authenticate: Bearer when the header is missing, and lets
# /docs log in through POST /auth/token.
bearer_token = OAuth2PasswordBearer(tokenUrl="/auth/token")


async def _token_user_id(request: Request, token: Annotated[str, Depends(bearer_token)]) -> int:
    tokens: TokenIssuer = request.app.state.token_issuer
    try:
        return tokens.user_id(token)
    except InvalidToken:
        raise NotAuthenticated from None


# The id named by a valid bearer token; nothing loaded yet.
TokenUserId = Annotated[int, Depends(_token_user_id)]


class _Account(Protocol):
    @property
    def is_active(self) -> bool: ...


A = TypeVar("A", bound=_Account)


def _active(account: A | None) -> A:
    if account is None:  # deleted since the token was issued
        raise NotAuthenticated
    if not account.is_active:
        raise NotAuthenticated("Inactive user")
    return account


async def load_current_user(users: UserRepository, user_id: int) -> User:
    """The token's user as an entity, for routes that change the account."""
    return _active(await users.get(user_id))


async def current_principal(users: UserRepository, user_id: int) -> Principal:
    return _active(await users.principal(user_id))


async def _current_user(user_id: TokenUserId, users: Users) -> Principal:
    return await current_principal(users, user_id)


# The token's user, known to exist and be active (load_current_user for the entity).
CurrentUser = Annotated[Principal, Depends(_current_user)]


def ensure_may_act_for(user: Principal, owner_id: int) -> None:
    """An account's data is written by its owner, or by a superuser."""
    if user.id != owner_id and not user.is_superuser:
        raise Forbidden


async def _owned_item(item_id: ItemId, user: CurrentUser, items: Items) -> Item:
    item = await items.get(item_id)
    if item is None:
        raise ItemNotFound
    ensure_may_act_for(user, item.owner_id)
    return item


# The item named in the path, once the token's user is known to be allowed to change it.
OwnedItem = Annotated[Item, Depends(_owned_item)]


async def refuse(users: UserRepository, actor_id: int, owner_id: int) -> NoReturn:
    """Raise why a write checked in SQL was refused to `actor_id`: 401 or 403 (or, if
    the actor may write after all, it changed meanwhile: 409)."""
    ensure_may_act_for(await current_principal(users, actor_id), owner_id)
    raise Conflict
