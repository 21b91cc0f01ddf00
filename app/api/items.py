from fastapi import APIRouter

from app.api.deps import Items, PageDep
from app.models import Item
from app.schemas import ItemOut

router = APIRouter(prefix="/items", tags=["items"])


@router.get("/", response_model=list[ItemOut])
async def list_items(items: Items, page: PageDep) -> list[Item]:
    return list(await items.list(skip=page.skip, limit=page.limit))
