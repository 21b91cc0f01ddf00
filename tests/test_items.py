"""Items: create (for a user, or for oneself), read, list with filters, change, delete."""

from httpx import AsyncClient

from tests.databases import Database
from tests.helpers import Account, create_item, new_account, new_superuser


async def test_create_item_for_user(client: AsyncClient) -> None:
    owner = await new_account(client)
    response = await client.post(
        f"/users/{owner.id}/items/",
        json={"title": "Lamp", "description": "brass"},
        headers=owner.headers,
    )
    assert response.status_code == 200
    item = response.json()
    assert item == {
        "title": "Lamp",
        "description": "brass",
        "id": item["id"],
        "owner_id": owner.id,
        "version": 1,
    }
    assert (await client.get("/items/")).json() == [item]


async def test_create_item_for_oneself(client: AsyncClient) -> None:
    owner = await new_account(client)
    response = await client.post("/items/", json={"title": "Kettle"}, headers=owner.headers)
    assert response.status_code == 200
    item = response.json()
    assert item == {
        "title": "Kettle",
        "description": None,
        "id": item["id"],
        "owner_id": owner.id,
        "version": 1,
    }
    assert (await client.get(f"/users/{owner.id}")).json()["items"] == [item]


async def test_items_cannot_be_created_for_a_missing_user(
    client: AsyncClient, database: Database
) -> None:
    admin = await new_superuser(client, database)
    response = await client.post(
        "/users/999/items/", json={"title": "orphan"}, headers=admin.headers
    )
    assert response.status_code == 404
    assert response.json() == {"detail": "User not found"}
    assert await database.scalar("SELECT count(*) FROM items") == 0


async def test_invalid_items_are_refused_and_create_nothing(
    client: AsyncClient, database: Database
) -> None:
    owner = await new_account(client)
    for body in (
        {},
        {"title": ""},
        {"title": "   "},
        {"title": "x" * 256},
        {"title": ["list"]},
        {"title": None},
        {"title": "ok", "description": 5},
        {"title": "ok", "description": "x" * 10_001},
    ):
        for url in (f"/users/{owner.id}/items/", "/items/"):
            response = await client.post(url, json=body, headers=owner.headers)
            assert response.status_code == 422, (url, body)
    assert await database.scalar("SELECT count(*) FROM items") == 0


async def test_read_one_item(client: AsyncClient) -> None:
    item = await create_item(client, await new_account(client), "Vase")
    response = await client.get(f"/items/{item['id']}")
    assert response.status_code == 200
    assert response.json() == item
    missing = await client.get("/items/4242")
    assert missing.status_code == 404
    assert missing.json() == {"detail": "Item not found"}


async def test_list_items_pages_in_id_order(client: AsyncClient) -> None:
    alice, bob = await new_account(client), await new_account(client)
    created = [
        await create_item(client, owner, f"item {n}")
        for n, owner in enumerate([alice, bob, alice, bob])
    ]
    assert (await client.get("/items/")).json() == created
    page = await client.get("/items/", params={"skip": 1, "limit": 2})
    assert page.status_code == 200
    assert page.json() == created[1:3]


async def test_list_items_filters_by_owner_and_title(client: AsyncClient) -> None:
    alice, bob = await new_account(client), await new_account(client)
    lamp = await create_item(client, alice, "Brass Lamp")
    rug = await create_item(client, alice, "Rug")
    bobs_lamp = await create_item(client, bob, "LAMP shade")
    percent = await create_item(client, bob, "100% wool")
    either = await create_item(client, bob, "and/or")

    async def titles(**params: str | int) -> list[str]:
        response = await client.get("/items/", params=params)
        assert response.status_code == 200
        return [item["title"] for item in response.json()]

    assert await titles(owner_id=alice.id) == [lamp["title"], rug["title"]]
    assert await titles(q="lamp") == [lamp["title"], bobs_lamp["title"]]
    assert await titles(q="lamp", owner_id=bob.id) == [bobs_lamp["title"]]
    assert await titles(q="LaMp", limit=1, skip=1) == [bobs_lamp["title"]]
    assert await titles(q="%") == [percent["title"]]  # % is not a wildcard
    assert await titles(q="_") == []
    assert await titles(q="d/o") == [either["title"]]  # nor is any escape character
    assert await titles(q="/%") == []
    assert await titles(owner_id=999) == []
    every = (lamp, rug, bobs_lamp, percent, either)
    assert await titles(q="") == [i["title"] for i in every]
    assert await titles(after=lamp["id"], limit=2) == [rug["title"], bobs_lamp["title"]]


async def test_list_items_rejects_bad_filters_and_paging(client: AsyncClient) -> None:
    for params in (
        {"skip": -1},
        {"limit": 0},
        {"limit": 101},
        {"limit": "ten"},
        {"owner_id": 0},
        {"owner_id": "me"},
        {"owner_id": 2**40},
        {"q": "x" * 256},
    ):
        assert (await client.get("/items/", params=params)).status_code == 422, params


async def test_owner_changes_an_item(client: AsyncClient) -> None:
    owner = await new_account(client)
    item = await create_item(client, owner, "Chair", description="oak")
    url = f"/items/{item['id']}"

    response = await client.patch(url, json={"title": "Armchair"}, headers=owner.headers)
    assert response.status_code == 200
    assert response.json() == {**item, "title": "Armchair", "version": 2}

    response = await client.patch(url, json={"description": None}, headers=owner.headers)
    changed = {**item, "title": "Armchair", "description": None, "version": 3}
    assert response.json() == changed

    # An empty change changes nothing, the version included.
    response = await client.patch(url, json={}, headers=owner.headers)
    assert response.json() == changed
    assert (await client.get(url)).json() == changed


async def test_invalid_changes_are_refused_and_change_nothing(client: AsyncClient) -> None:
    owner = await new_account(client)
    item = await create_item(client, owner, "Chair")
    url = f"/items/{item['id']}"
    for body in ({"title": None}, {"title": ""}, {"title": "x" * 256}, {"description": 3}):
        response = await client.patch(url, json=body, headers=owner.headers)
        assert response.status_code == 422, body
    assert (await client.get(url)).json() == item
    response = await client.patch("/items/4242", json={"title": "x"}, headers=owner.headers)
    assert response.status_code == 404
    assert response.json() == {"detail": "Item not found"}


async def test_owner_deletes_an_item(client: AsyncClient) -> None:
    owner = await new_account(client)
    item = await create_item(client, owner, "Chair")
    keep = await create_item(client, owner, "Table")
    response = await client.delete(f"/items/{item['id']}", headers=owner.headers)
    assert response.status_code == 204
    assert response.content == b""
    assert "content-type" not in response.headers  # no content: no type either
    assert "content-length" not in response.headers
    assert (await client.get(f"/items/{item['id']}")).status_code == 404
    assert (await client.get("/items/")).json() == [keep]
    again = await client.delete(f"/items/{item['id']}", headers=owner.headers)
    assert again.status_code == 404


async def assert_item_unchanged(client: AsyncClient, item: dict[str, object]) -> None:
    assert (await client.get(f"/items/{item['id']}")).json() == item


async def test_only_the_owner_or_a_superuser_may_change_an_item(
    client: AsyncClient, database: Database
) -> None:
    owner, other = await new_account(client), await new_account(client)
    admin = await new_superuser(client, database)
    item = await create_item(client, owner, "Chair")
    url = f"/items/{item['id']}"

    anonymous = await client.patch(url, json={"title": "mine now"})
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"] == "Bearer"
    forbidden = await client.patch(url, json={"title": "mine now"}, headers=other.headers)
    assert forbidden.status_code == 403
    assert forbidden.json() == {"detail": "Not enough permissions"}
    await assert_item_unchanged(client, item)

    response = await client.patch(url, json={"title": "by admin"}, headers=admin.headers)
    assert response.status_code == 200
    assert response.json() == {**item, "title": "by admin", "version": 2}  # still the owner's


async def write(client: AsyncClient, route: str, item_id: int, who: Account | None) -> int:
    headers = who.headers if who else {}
    if route == "patch":
        response = await client.patch(f"/items/{item_id}", json={"title": "x"}, headers=headers)
    else:
        response = await client.delete(f"/items/{item_id}", headers=headers)
    return response.status_code


async def test_the_authorization_matrix_of_item_writes(
    client: AsyncClient, database: Database
) -> None:
    owner, other = await new_account(client), await new_account(client)
    admin = await new_superuser(client, database)
    expected = {
        "anonymous": (401, 401),
        "other": (403, 403),
        "owner": (200, 204),
        "admin": (200, 204),
    }
    actors = {"anonymous": None, "other": other, "owner": owner, "admin": admin}
    for name, who in actors.items():
        item = await create_item(client, owner, f"for {name}")
        patched = await write(client, "patch", item["id"], who)
        deleted = await write(client, "delete", item["id"], who)
        assert (patched, deleted) == expected[name], name


async def test_keyset_pagination_walks_every_item_once(client: AsyncClient) -> None:
    owner = await new_account(client)
    created = [await create_item(client, owner, f"item {n}") for n in range(7)]
    seen: list[dict[str, object]] = []
    after = 0
    while True:
        page = (await client.get("/items/", params={"after": after, "limit": 3})).json()
        if not page:
            break
        seen += page
        after = page[-1]["id"]
    assert seen == created
    middle = created[2]["id"]
    response = await client.get("/items/", params={"after": middle, "skip": 1, "limit": 2})
    assert response.json() == created[4:6]  # skip counts from `after`
    assert (await client.get("/items/", params={"after": 2_147_483_647})).json() == []
    for bad in (-1, "x", 2**31):
        assert (await client.get("/items/", params={"after": bad})).status_code == 422
