from fastapi import APIRouter, Request, Response, status

from app import policy
from app.api.conditional import EntityTags, user_etag, user_response
from app.api.deps import (
    Bearer,
    ClientAddress,
    IdempotentWrite,
    IfMatch,
    IfNoneMatch,
    Page,
    Passwords,
    ReadSession,
    Transaction,
    UserId,
)
from app.api.items import NEW_ITEM, create_item_as
from app.api.responses import (
    MALFORMED_IF_MATCH,
    NOT_MODIFIED,
    created,
    errors,
    link,
    shown,
    view_response,
)
from app.db import Transaction as TransactionSession
from app.errors import IncorrectPassword, PreconditionFailed, UserNotFound
from app.repositories import UserRepository
from app.schemas import ItemCreate, ItemOut, UserCreate, UserOut, UserUpdate
from app.security import Bearer as BearerToken
from app.services import services
from app.views import ViewDict

router = APIRouter(prefix="/users", tags=["users"], responses=errors(503))


def _found(user: ViewDict | None) -> ViewDict:
    if user is None:
        raise UserNotFound
    return user


async def _precondition(tx: TransactionSession, bearer: BearerToken, if_match: EntityTags) -> None:
    """412 unless the account is still at the If-Match ETag; holds its row meanwhile."""
    users = UserRepository(tx)
    await users.lock(bearer.user_id)
    current = await users.view(bearer.user_id)
    if current is not None:
        etag = user_etag(current)
        if not if_match.match(etag, weak=False):
            raise PreconditionFailed(etag)


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
    body: UserCreate, write: IdempotentWrite, passwords: Passwords, address: ClientAddress
) -> Response:
    """Sign up. The password is hashed (argon2id) and never returned."""
    hashed_password = await passwords.hash(body.password, address)
    user = await UserRepository(write).add(email=body.email, hashed_password=hashed_password)
    return write.replayable(user_response(user))


@router.get("/", operation_id="users-list", response_model=list[UserOut])
async def list_users(db: ReadSession, page: Page) -> Response:
    return view_response(await UserRepository(db).list_views(page))


@router.get(
    "/me",
    operation_id="users-read-me",
    response_model=UserOut,
    responses=shown("Your account") | NOT_MODIFIED | errors(401),
)
async def read_me(bearer: Bearer, db: ReadSession, if_none_match: IfNoneMatch = None) -> Response:
    users = UserRepository(db)
    policy.authenticated(await users.principal(bearer.user_id), bearer)
    return user_response(_found(await users.view(bearer.user_id)), if_none_match)


@router.patch(
    "/me",
    operation_id="users-update-me",
    response_model=UserOut,
    responses=shown("Your account, changed")
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
    bearer: Bearer,
    tx: Transaction,
    passwords: Passwords,
    address: ClientAddress,
    if_match: IfMatch,
) -> Response:
    """Change the email and/or the password; a new password needs `current_password`,
    and revokes every token issued before (log in again). With If-Match, only if the
    account is still at that ETag (412 otherwise)."""
    users = UserRepository(tx)
    if if_match is not None:
        await _precondition(tx, bearer, if_match)
    if body.password is not None and body.current_password is not None:  # sent together
        async with passwords.turn(address) as hashing:  # the account is loaded in our turn
            me = policy.authenticated(await users.get(bearer.user_id), bearer)
            matches, _ = await hashing.verify(body.current_password, me.hashed_password)
            if not matches:
                raise IncorrectPassword
            me.hashed_password = await hashing.hash(body.password)
            me.token_version += 1
    else:
        me = policy.authenticated(await users.get(bearer.user_id), bearer)
    if body.email is not None:
        me.email = body.email
    await users.save(me)
    return user_response(_found(await users.view(me.id)))


@router.delete(
    "/me",
    operation_id="users-delete-me",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,  # no body, so no content type
    responses=errors(
        MALFORMED_IF_MATCH, 401, (404, "Account deleted meanwhile"), 412, 428, limited=True
    ),
)
async def delete_me(bearer: Bearer, tx: Transaction, if_match: IfMatch) -> None:
    """Delete the account and, with it, all of its items. With If-Match, only if the
    account is still at that ETag (412 otherwise)."""
    users = UserRepository(tx)
    if if_match is not None:
        await _precondition(tx, bearer, if_match)
    policy.authenticated(await users.principal(bearer.user_id), bearer)
    await users.delete(bearer.user_id)


@router.get(
    "/{user_id}",
    operation_id="users-read",
    response_model=UserOut,
    responses=shown("The user, with their items") | NOT_MODIFIED | errors((404, "User not found")),
)
async def read_user(
    request: Request, user_id: UserId, if_none_match: IfNoneMatch = None
) -> Response:
    # Users with their items by id, concurrent look-ups answered by one query
    # (app.batching), outside any unit of work. Reached from the request: as a
    # dependency of its own, solving it cost 6% of this route's instructions.
    views = services(request).user_views
    return user_response(_found(await views.get(user_id)), if_none_match)


@router.post(
    "/{user_id}/items/",
    operation_id="users-create-item",
    response_model=ItemOut,
    responses=NEW_ITEM | errors(401, 403, (404, "User not found"), 409, body=True),
)
async def create_item_for_user(
    user_id: UserId, body: ItemCreate, bearer: Bearer, write: IdempotentWrite
) -> Response:
    """Create an item owned by `user_id`: that user's token, or a superuser's."""
    return await create_item_as(write, bearer, user_id, body)
