"""Items: their views, pages of them, and the writes that carry the policy's check."""

from functools import cache
from typing import Any, Generic, cast

from sqlalchemy import (
    BindParameter,
    CursorResult,
    Select,
    String,
    Update,
    bindparam,
    delete,
    insert,
    select,
    update,
)

from app.domain.policy import may_act_for
from app.domain.repositories.common import (
    PageOfViews,
    S,
    page_of,
    page_params,
    paged,
    refused_for,
)
from app.domain.schemas import ITEM_VIEW, Page, ViewDict
from app.domain.security import Bearer
from app.platform.errors import UserNotFound
from app.platform.models import Item
from app.platform.sessions import SingleWrite, Transaction

_ITEM_VIEW = select(*ITEM_VIEW.columns).where(Item.id == bindparam("item_id"))
# The bearer as bind parameters, for the policy's SQL form.
_BEARER: tuple[BindParameter[int], BindParameter[int]] = (
    bindparam("caller_id"),
    bindparam("token_version"),
)
# The item, if the caller may create it for its owner (app.domain.policy): the check and
# the write in one statement, so atomic together.
_ADD_ITEM_AS = (
    insert(Item)
    .from_select(
        ["title", "description", "owner_id"],
        select(bindparam("title"), bindparam("description"), bindparam("owner_id")).where(
            may_act_for(_BEARER, bindparam("owner_id"))
        ),
    )
    .returning(*ITEM_VIEW.columns)
)
# The item, if the caller may change it (and, with If-Match, it is at that version).
_ITEM_AS = (Item.id == bindparam("item_id"), may_act_for(_BEARER, Item.owner_id))
_AT_VERSIONS = Item.version.in_(bindparam("versions", expanding=True))
_DELETE_ITEM_AS = delete(Item).where(*_ITEM_AS)
_DELETE_ITEM_AS_IF = _DELETE_ITEM_AS.where(_AT_VERSIONS)


@cache
def _update_item_as(fields: frozenset[str], if_match: bool) -> Update:
    # One statement per set of fields sent (a handful), built once.
    values: dict[str, Any] = {field: bindparam(field) for field in sorted(fields)}
    # A change increments the version; an empty one leaves the item as it is.
    values["version"] = Item.version + 1 if fields else Item.version
    statement = update(Item).where(*_ITEM_AS).values(values).returning(*ITEM_VIEW.columns)
    return statement.where(_AT_VERSIONS) if if_match else statement


_LIKE_ESCAPE = "/"


# Pages: one statement per combination of filters (a handful), built once; the
# values are bind parameters.
@cache
def _item_page(*, owner: bool, title: bool, after: bool) -> Select[*tuple[Any, ...]]:
    statement = select(*ITEM_VIEW.columns)
    if owner:
        statement = statement.where(Item.owner_id == bindparam("owner_id"))
    if title:
        pattern = bindparam("title_contains", type_=String)
        statement = statement.where(Item.title.icontains(pattern, escape=_LIKE_ESCAPE))
    return paged(statement, Item.id, after=after)


def _escape_like(text: str) -> str:
    """`text` matched literally by LIKE ... ESCAPE '/'."""
    for special in (_LIKE_ESCAPE, "%", "_"):
        text = text.replace(special, _LIKE_ESCAPE + special)
    return text


def _bearer_params(bearer: Bearer) -> dict[str, int]:
    return {"caller_id": bearer.user_id, "token_version": bearer.token_version}


class ItemRepository(Generic[S]):
    def __init__(self, session: S) -> None:
        self.session: S = session

    async def view(self, item_id: int) -> ViewDict | None:
        row = (await self.session.execute(_ITEM_VIEW, {"item_id": item_id})).one_or_none()
        return ITEM_VIEW.of_row(row) if row else None

    async def list_views(
        self, page: Page, *, owner_id: int | None = None, title_contains: str | None = None
    ) -> PageOfViews:
        params = page_params(page)
        if owner_id is not None:
            params["owner_id"] = owner_id
        if title_contains:
            # A % or _ in the search text matches itself.
            params["title_contains"] = _escape_like(title_contains)
        statement = _item_page(
            owner=owner_id is not None, title=bool(title_contains), after=page.after is not None
        )
        # all(): the rows in one call, not one Python call per row through the cursor.
        rows = (await self.session.execute(statement, params)).all()
        return page_of(ITEM_VIEW.of_rows(rows), page)

    async def add_as(
        self: "ItemRepository[SingleWrite] | ItemRepository[Transaction]",
        bearer: Bearer,
        owner_id: int,
        *,
        title: str,
        description: str | None,
    ) -> ViewDict | None:
        """Create an item for `owner_id` if the bearer may (app.domain.policy): one INSERT ...
        SELECT, so the check and the write are atomic. None when the caller may not;
        UserNotFound when the owner does not exist."""
        values = {
            "title": title,
            "description": description,
            "owner_id": owner_id,
            **_bearer_params(bearer),
        }
        # The owner does not exist (or was deleted meanwhile): the foreign key, not
        # a prior look-up, is what refuses orphan items.
        with refused_for("foreign_key", UserNotFound):
            row = (await self.session.write(_ADD_ITEM_AS, values)).one_or_none()
        return ITEM_VIEW.of_row(row) if row else None

    async def update_as(
        self: "ItemRepository[SingleWrite] | ItemRepository[Transaction]",
        bearer: Bearer,
        item_id: int,
        changes: dict[str, Any],
        versions: list[int] | None,
    ) -> ViewDict | None:
        """Change the item if the bearer may (app.domain.policy) and, when `versions` is given,
        it is at one of them: one UPDATE, so check and change are atomic. Its version
        goes up by one when anything changes. None when nothing matched."""
        statement = _update_item_as(frozenset(changes), versions is not None)
        params = {**changes, "item_id": item_id, **_bearer_params(bearer)}
        if versions is not None:
            params["versions"] = versions
        row = (await self.session.write(statement, params)).one_or_none()
        return ITEM_VIEW.of_row(row) if row else None

    async def delete_as(
        self: "ItemRepository[SingleWrite] | ItemRepository[Transaction]",
        bearer: Bearer,
        item_id: int,
        versions: list[int] | None,
    ) -> bool:
        """Delete the item if the bearer may and, when `versions` is given, it is at one
        of them: one DELETE. False when nothing matched."""
        statement = _DELETE_ITEM_AS_IF if versions is not None else _DELETE_ITEM_AS
        params = {"item_id": item_id, "versions": versions, **_bearer_params(bearer)}
        result = await self.session.write(statement, params)
        return cast(CursorResult[Any], result).rowcount > 0
