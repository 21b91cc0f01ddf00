from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from app.api.deps import ItemId, Items, OwnedItem, PageDep, TokenUserId, Users, refuse
from app.api.responses import errors, view_response
from app.db import one_statement
from app.errors import ItemNotFound
from app.models import Item
from app.schemas import MAX_ID, ItemCreate, ItemOut, ItemUpdate, SearchText

router = APIRouter(prefix="/items", tags=["items"], responses=errors(503))

ITEM_NOT_FOUND = (404, "Item not found")


@router.get("/", response_model=list[ItemOut])
async def list_items(
    items: Items,
    page: PageDep,
    owner_id: Annotated[
        int | None, Query(ge=1, le=MAX_ID, description="Only this user's items.")
    ] = None,
    q: Annotated[SearchText | None, Query()] = None,
) -> Response:
    return view_response(await items.list_views(page, owner_id=owner_id, title_contains=q))


@router.post(
    "/",
    response_model=ItemOut,
    responses=errors(401, (404, "User not found (deleted meanwhile)"), 409, body=True),
)
@one_statement
async def create_item(
    body: ItemCreate, actor_id: TokenUserId, items: Items, users: Users
) -> Response:
    """Create an item owned by the token's user."""
    item = await items.add_as(actor_id, actor_id, title=body.title, description=body.description)
    if item is None:
        await refuse(users, actor_id, actor_id)
    return view_response(item)


@router.get("/{item_id}", response_model=ItemOut, responses=errors(ITEM_NOT_FOUND))
async def read_item(item_id: ItemId, items: Items) -> Item:
    item = await items.get(item_id)
    if item is None:
        raise ItemNotFound
    return item


@router.patch(
    "/{item_id}", response_model=ItemOut, responses=errors(401, 403, ITEM_NOT_FOUND, 409, body=True)
)
async def update_item(body: ItemUpdate, item: OwnedItem, items: Items) -> Item:
    """Change the title and/or description: the owner's token, or a superuser's."""
    for field, value in body.model_dump(exclude_unset=True).items():
        setattr(item, field, value)
    await items.save(item)
    return item


@router.delete(
    "/{item_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=errors(401, 403, ITEM_NOT_FOUND),
)
async def delete_item(item: OwnedItem, items: Items) -> None:
    """Delete an item: the owner's token, or a superuser's."""
    await items.delete(item)
