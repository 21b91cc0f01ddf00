"""The seed's item routes: create for a user, list."""

from httpx import AsyncClient

from tests.conftest import Database
from tests.helpers import create_item, sign_up


async def test_create_item_for_user(client: AsyncClient) -> None:
    user = await sign_up(client)
    response = await client.post(
        f"/users/{user['id']}/items/", json={"title": "Lamp", "description": "brass"}
    )
    assert response.status_code == 200
    item = response.json()
    assert item == {
        "title": "Lamp",
        "description": "brass",
        "id": item["id"],
        "owner_id": user["id"],
    }
    assert (await client.get("/items/")).json() == [item]


async def test_description_is_optional(client: AsyncClient) -> None:
    user = await sign_up(client)
    item = await create_item(client, user["id"], "Rug")
    assert item["description"] is None


async def test_items_cannot_be_created_for_a_missing_user(
    client: AsyncClient, database: Database
) -> None:
    response = await client.post("/users/999/items/", json={"title": "orphan"})
    assert response.status_code == 404
    assert response.json() == {"detail": "User not found"}
    assert await database.scalar("SELECT count(*) FROM items") == 0


async def test_invalid_items_are_refused_and_create_nothing(
    client: AsyncClient, database: Database
) -> None:
    user = await sign_up(client)
    for body in (
        {},
        {"title": ""},
        {"title": "   "},
        {"title": "x" * 256},
        {"title": ["list"]},
        {"title": "ok", "description": 5},
        {"title": "ok", "description": "x" * 10_001},
    ):
        response = await client.post(f"/users/{user['id']}/items/", json=body)
        assert response.status_code == 422, body
    assert await database.scalar("SELECT count(*) FROM items") == 0


async def test_list_items_pages_in_id_order(client: AsyncClient) -> None:
    alice, bob = await sign_up(client), await sign_up(client)
    created = [
        await create_item(client, owner["id"], f"item {n}")
        for n, owner in enumerate([alice, bob, alice, bob])
    ]
    assert (await client.get("/items/")).json() == created
    page = await client.get("/items/", params={"skip": 1, "limit": 2})
    assert page.status_code == 200
    assert page.json() == created[1:3]


async def test_list_items_rejects_bad_paging(client: AsyncClient) -> None:
    for params in ({"skip": -1}, {"limit": 0}, {"limit": 101}, {"limit": "ten"}):
        assert (await client.get("/items/", params=params)).status_code == 422, params
