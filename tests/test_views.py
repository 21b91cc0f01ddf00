"""Each view is declared once: what is selected, what responses hold and what OpenAPI
documents are the same fields, in the same order."""

from typing import Any

from httpx import AsyncClient

from app.domain.schemas import ITEM_VIEW, USER_VIEW, View
from tests.helpers import create_item, new_account

VIEWS = {"ItemOut": ITEM_VIEW, "UserOut": USER_VIEW}


def _fields(view: View) -> list[str]:
    return [*view.fields, *view.children]


async def test_views_responses_and_the_openapi_schema_agree(client: AsyncClient) -> None:
    schemas = (await client.get("/openapi.json")).json()["components"]["schemas"]
    for name, view in VIEWS.items():
        assert view.model.__name__ == name
        assert _fields(view) == list(view.model.model_fields)
        assert [column.key for column in view.columns] == list(view.fields)
        assert list(schemas[name]["properties"]) == _fields(view), name
        assert set(schemas[name]["required"]) == set(_fields(view)), name

    owner = await new_account(client)
    item = await create_item(client, owner, "Lamp")
    responses: dict[str, list[Any]] = {
        "ItemOut": [
            item,
            (await client.get(f"/items/{item['id']}")).json(),
            *(await client.get("/items/")).json(),
            (
                await client.patch(
                    f"/items/{item['id']}", json={"title": "Desk lamp"}, headers=owner.headers
                )
            ).json(),
        ],
        "UserOut": [
            owner.user,
            (await client.get(f"/users/{owner.id}")).json(),
            (await client.get("/users/me", headers=owner.headers)).json(),
            *(await client.get("/users/")).json(),
        ],
    }
    for name, bodies in responses.items():
        view = VIEWS[name]
        for body in bodies:
            assert list(body) == _fields(view), (name, body)
            view.model.model_validate(body)
            for child_name, child in view.children.items():
                for child_body in body[child_name]:
                    assert list(child_body) == _fields(child), (name, child_body)
