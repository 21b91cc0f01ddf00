from fastapi import APIRouter, Response, status

from app.api.deps import (
    CurrentUser,
    Items,
    PageDep,
    Passwords,
    TokenUserId,
    UserId,
    Users,
    UserViews,
    load_current_user,
    refuse,
)
from app.api.responses import errors, view_response
from app.db import one_statement
from app.errors import IncorrectPassword, UserNotFound
from app.models import User
from app.repositories import UserView
from app.schemas import ItemCreate, ItemOut, UserCreate, UserOut, UserUpdate

router = APIRouter(prefix="/users", tags=["users"], responses=errors(503))


def _found(user: UserView | None) -> Response:
    if user is None:
        raise UserNotFound
    return view_response(user)


async def _view(users: Users, user_id: int) -> Response:
    return _found(await users.view(user_id))


@router.post(
    "/", response_model=UserOut, responses=errors((400, "Email already registered"), body=True)
)
@one_statement
async def create_user(body: UserCreate, users: Users, passwords: Passwords) -> User:
    """Sign up. The password is hashed (argon2id) and never returned."""
    hashed_password = await passwords.hash(body.password)
    return await users.add(email=body.email, hashed_password=hashed_password)


@router.get("/", response_model=list[UserOut])
async def list_users(users: Users, page: PageDep) -> Response:
    return view_response(await users.list_views(page))


@router.get("/me", response_model=UserOut, responses=errors(401))
async def read_me(me: CurrentUser, users: Users) -> Response:
    return await _view(users, me.id)


@router.patch(
    "/me",
    response_model=UserOut,
    responses=errors(
        (400, "Email already registered, or current password incorrect"), 401, 409, body=True
    ),
)
async def update_me(
    body: UserUpdate, user_id: TokenUserId, users: Users, passwords: Passwords
) -> Response:
    """Change the email and/or the password; a new password needs `current_password`."""
    if body.password is not None and body.current_password is not None:  # sent together
        async with passwords.turn() as hashing:  # the account is loaded once it is our turn
            me = await load_current_user(users, user_id)
            matches, _ = await hashing.verify(body.current_password, me.hashed_password)
            if not matches:
                raise IncorrectPassword
            me.hashed_password = await hashing.hash(body.password)
    else:
        me = await load_current_user(users, user_id)
    if body.email is not None:
        me.email = body.email
    await users.save(me)
    return await _view(users, me.id)


@router.delete("/me", status_code=status.HTTP_204_NO_CONTENT, responses=errors(401))
async def delete_me(me: CurrentUser, users: Users) -> None:
    """Delete the account and, with it, all of its items."""
    await users.delete(me.id)


@router.get("/{user_id}", response_model=UserOut, responses=errors((404, "User not found")))
async def read_user(user_id: UserId, views: UserViews) -> Response:
    return _found(await views.get(user_id))


@router.post(
    "/{user_id}/items/",
    response_model=ItemOut,
    responses=errors(401, 403, (404, "User not found"), 409, body=True),
)
@one_statement
async def create_item_for_user(
    user_id: UserId, body: ItemCreate, actor_id: TokenUserId, items: Items, users: Users
) -> Response:
    """Create an item owned by `user_id`: that user's token, or a superuser's."""
    item = await items.add_as(actor_id, user_id, title=body.title, description=body.description)
    if item is None:
        await refuse(users, actor_id, user_id)
    return view_response(item)
