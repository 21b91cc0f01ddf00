"""Items: public to read, their owner's (or a superuser's) to change."""

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status

from app.api.dependencies import (
    BearerDep,
    IfMatchDep,
    IfNoneMatch,
    ItemId,
    PageQuery,
    ReplicaReadDep,
    SingleWriteDep,
)
from app.api.idempotency import IdempotentWrite, IdempotentWriteDep
from app.api.responses import (
    MALFORMED_IF_MATCH,
    NOT_MODIFIED,
    changed,
    created,
    deleted,
    errors,
    item_response,
    link,
    listed,
    page_response,
    shown,
)
from app.domain import refusals
from app.domain.repositories.items import ItemRepository
from app.domain.schemas import Id, ItemCreate, ItemOut, ItemUpdate, SearchText
from app.domain.security import Bearer
from app.platform.errors import ItemNotFound

router = APIRouter(prefix="/items", tags=["items"], responses=errors(503))

ITEM_NOT_FOUND = (404, "Item not found")
# What a change of an item can answer besides 200/204.
CHANGE_ERRORS = (MALFORMED_IF_MATCH, 401, 403, ITEM_NOT_FOUND, 409, 412, 428)
# Where a new item leads.
NEW_ITEM = created(
    "The new item",
    {
        f"{method.title()}Item": link("/items/{item_id}", method, "item_id")
        for method in ("get", "patch", "delete")
    },
)


async def create_item_as(
    write: IdempotentWrite, bearer: Bearer, owner_id: int, body: ItemCreate
) -> Response:
    """Both item-creation routes: the policy is checked in the INSERT itself."""
    item = await ItemRepository(write).add_as(
        bearer, owner_id, title=body.title, description=body.description
    )
    if item is None:
        raise await refusals.why_not_created(write, bearer, owner_id)
    return write.replayable(item_response(item))


@router.get(
    "/",
    operation_id="items-list",
    response_model=list[ItemOut],
    responses=listed("A page of items, by id"),
)
async def list_items(
    request: Request,
    db: ReplicaReadDep,
    page: PageQuery,
    owner_id: Annotated[Id | None, Query(description="Only this user's items.")] = None,
    q: Annotated[SearchText | None, Query()] = None,
) -> Response:
    items = await ItemRepository(db).list_views(page, owner_id=owner_id, title_contains=q)
    return page_response(items, request)


@router.post(
    "/",
    operation_id="items-create",
    response_model=ItemOut,
    responses=NEW_ITEM | errors(401, (404, "User not found (deleted meanwhile)"), 409, body=True),
)
async def create_item(body: ItemCreate, bearer: BearerDep, write: IdempotentWriteDep) -> Response:
    """Create an item owned by the token's user."""
    return await create_item_as(write, bearer, bearer.user_id, body)


@router.get(
    "/{item_id}",
    operation_id="items-read",
    response_model=ItemOut,
    responses=shown("The item") | NOT_MODIFIED | errors(ITEM_NOT_FOUND),
)
async def read_item(
    item_id: ItemId, db: ReplicaReadDep, if_none_match: IfNoneMatch = None
) -> Response:
    item = await ItemRepository(db).view(item_id)
    if item is None:
        raise ItemNotFound
    return item_response(item, if_none_match)


@router.patch(
    "/{item_id}",
    operation_id="items-update",
    response_model=ItemOut,
    responses=changed("The item, changed") | errors(*CHANGE_ERRORS, body=True),
)
async def update_item(
    item_id: ItemId,
    body: ItemUpdate,
    bearer: BearerDep,
    write: SingleWriteDep,
    if_match: IfMatchDep,
) -> Response:
    """Change the title and/or description: the owner's token, or a superuser's. With
    If-Match, only if the item is still at that ETag (412 otherwise)."""
    versions = if_match.item_versions() if if_match else None
    changes = body.model_dump(exclude_unset=True)
    item = await ItemRepository(write).update_as(bearer, item_id, changes, versions)
    if item is None:
        raise await refusals.why_unchanged(write, bearer, item_id, versions)
    return item_response(item)


@router.delete(
    "/{item_id}",
    operation_id="items-delete",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,  # no body, so no content type
    responses=deleted("The item is deleted") | errors(*CHANGE_ERRORS, limited=True),
)
async def delete_item(
    item_id: ItemId, bearer: BearerDep, write: SingleWriteDep, if_match: IfMatchDep
) -> None:
    """Delete an item: the owner's token, or a superuser's. With If-Match, only if the
    item is still at that ETag (412 otherwise)."""
    versions = if_match.item_versions() if if_match else None
    if not await ItemRepository(write).delete_as(bearer, item_id, versions):
        raise await refusals.why_unchanged(write, bearer, item_id, versions)
