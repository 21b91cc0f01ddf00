"""Users: sign up, read accounts, manage your own (`/users/me`)."""

from fastapi import APIRouter, Request, Response, status

from app.api.dependencies import (
    BearerDep,
    ClientAddressDep,
    IfNoneMatch,
    MyAccountDep,
    MyAccountViewDep,
    PageQuery,
    PasswordsDep,
    ReplicaReadDep,
    TransactionDep,
    UserId,
    UserViewsDep,
)
from app.api.idempotency import IdempotentWriteDep
from app.api.items import NEW_ITEM, create_item_as
from app.api.responses import (
    MALFORMED_IF_MATCH,
    NOT_MODIFIED,
    changed,
    created,
    deleted,
    errors,
    link,
    listed,
    page_response,
    shown,
    user_response,
)
from app.domain.repositories.users import UserRepository
from app.domain.schemas import ItemCreate, ItemOut, UserCreate, UserOut, UserUpdate
from app.platform.errors import IncorrectPassword, UserNotFound

router = APIRouter(prefix="/users", tags=["users"], responses=errors(503))


@router.post(
    "/",
    operation_id="users-create",
    response_model=UserOut,
    responses=created(
        "The new account",
        {
            "GetUser": link("/users/{user_id}", "get", "user_id"),
            "CreateItemForUser": link("/users/{user_id}/items/", "post", "user_id"),
        },
    )
    | errors((400, "Email already registered"), 409, 429, body=True),
)
async def create_user(
    body: UserCreate,
    write: IdempotentWriteDep,
    passwords: PasswordsDep,
    address: ClientAddressDep,
) -> Response:
    """Sign up. The password is hashed (argon2id) and never returned."""
    hashed_password = await passwords.hash(body.password, address)
    user = await UserRepository(write).add(email=body.email, hashed_password=hashed_password)
    return write.replayable(user_response(user))


@router.get(
    "/",
    operation_id="users-list",
    response_model=list[UserOut],
    responses=listed("A page of users, by id, each with their items"),
)
async def list_users(request: Request, db: ReplicaReadDep, page: PageQuery) -> Response:
    return page_response(await UserRepository(db).list_views(page), request)


@router.get(
    "/me",
    operation_id="users-read-me",
    response_model=UserOut,
    responses=shown("Your account") | NOT_MODIFIED | errors(401),
)
async def read_me(me: MyAccountViewDep, if_none_match: IfNoneMatch = None) -> Response:
    return user_response(me, if_none_match)


@router.patch(
    "/me",
    operation_id="users-update-me",
    response_model=UserOut,
    responses=changed("Your account, changed")
    | errors(
        (400, f"Email already registered, current password incorrect, or {MALFORMED_IF_MATCH[1]}"),
        401,
        (404, "Account deleted meanwhile"),
        409,
        412,
        428,
        429,
        body=True,
    ),
)
async def update_me(
    body: UserUpdate,
    account: MyAccountDep,
    tx: TransactionDep,
    passwords: PasswordsDep,
    address: ClientAddressDep,
) -> Response:
    """Change the email and/or the password; a new password needs `current_password`,
    and revokes every token issued before (log in again). With If-Match, only if the
    account is still at that ETag (412 otherwise)."""
    if body.password is not None and body.current_password is not None:  # sent together
        async with passwords.turn(address) as hashing:  # the account is loaded in our turn
            me = await account.load()
            matches, _ = await hashing.verify(body.current_password, me.hashed_password)
            if not matches:
                raise IncorrectPassword
            me.hashed_password = await hashing.hash(body.password)
            me.token_version += 1
    else:
        me = await account.load()
    if body.email is not None:
        me.email = body.email
    users = UserRepository(tx)
    await users.save(me)
    changed = await users.view(me.id)
    if changed is None:  # deleted meanwhile
        raise UserNotFound
    return user_response(changed)


@router.delete(
    "/me",
    operation_id="users-delete-me",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,  # no body, so no content type
    responses=deleted("The account is deleted, and its items")
    | errors(MALFORMED_IF_MATCH, 401, (404, "Account deleted meanwhile"), 412, 428, limited=True),
)
async def delete_me(account: MyAccountDep, tx: TransactionDep) -> None:
    """Delete the account and, with it, all of its items. With If-Match, only if the
    account is still at that ETag (412 otherwise)."""
    me = await account.load()
    await UserRepository(tx).delete(me.id)


@router.get(
    "/{user_id}",
    operation_id="users-read",
    response_model=UserOut,
    responses=shown("The user, with their items") | NOT_MODIFIED | errors((404, "User not found")),
)
async def read_user(
    user_id: UserId, views: UserViewsDep, if_none_match: IfNoneMatch = None
) -> Response:
    user = await views.get(user_id)
    if user is None:
        raise UserNotFound
    return user_response(user, if_none_match)


@router.post(
    "/{user_id}/items/",
    operation_id="users-create-item",
    response_model=ItemOut,
    responses=NEW_ITEM | errors(401, 403, (404, "User not found"), 409, body=True),
)
async def create_item_for_user(
    user_id: UserId, body: ItemCreate, bearer: BearerDep, write: IdempotentWriteDep
) -> Response:
    """Create an item owned by `user_id`: that user's token, or a superuser's."""
    return await create_item_as(write, bearer, user_id, body)
