from fastapi import APIRouter

from app.api.deps import Items, PageDep, Passwords, UserId, Users
from app.errors import UserNotFound
from app.models import Item, User
from app.schemas import ErrorMessage, ItemCreate, ItemOut, UserCreate, UserOut

router = APIRouter(prefix="/users", tags=["users"])


@router.post(
    "/",
    response_model=UserOut,
    responses={400: {"model": ErrorMessage, "description": "Email already registered"}},
)
async def create_user(body: UserCreate, users: Users, passwords: Passwords) -> User:
    hashed_password = await passwords.hash(body.password)
    return await users.add(email=body.email, hashed_password=hashed_password)


@router.get("/", response_model=list[UserOut])
async def list_users(users: Users, page: PageDep) -> list[User]:
    return list(await users.list_with_items(skip=page.skip, limit=page.limit))


@router.get(
    "/{user_id}",
    response_model=UserOut,
    responses={404: {"model": ErrorMessage, "description": "User not found"}},
)
async def read_user(user_id: UserId, users: Users) -> User:
    user = await users.get_with_items(user_id)
    if user is None:
        raise UserNotFound
    return user


@router.post(
    "/{user_id}/items/",
    response_model=ItemOut,
    responses={404: {"model": ErrorMessage, "description": "User not found"}},
)
async def create_item_for_user(user_id: UserId, body: ItemCreate, items: Items) -> Item:
    return await items.add_for_owner(user_id, title=body.title, description=body.description)
