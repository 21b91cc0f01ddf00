"""Concurrent writers: ETags, If-None-Match (304), If-Match (412, or 428 when required)."""

import asyncio

from httpx import AsyncClient

from app.main import create_app
from tests.databases import Database, make_settings, serve
from tests.helpers import create_item, new_account


async def test_single_resources_carry_strong_etags_and_answer_304(client: AsyncClient) -> None:
    owner = await new_account(client)
    item = await create_item(client, owner, "Lamp")
    for url, headers in (
        (f"/items/{item['id']}", {}),
        (f"/users/{owner.id}", {}),
        ("/users/me", owner.headers),
    ):
        first = await client.get(url, headers=headers)
        etag = first.headers["etag"]
        assert etag.startswith('"'), url  # strong: no W/
        assert etag.endswith('"'), url
        again = await client.get(url, headers={**headers, "If-None-Match": etag})
        assert again.status_code == 304, url
        assert again.content == b""
        assert again.headers["etag"] == etag
        other = await client.get(url, headers={**headers, "If-None-Match": '"nope", W/"x"'})
        assert other.status_code == 200
        assert other.json() == first.json()
    # A change makes a new ETag, for the item and for its owner (whose items it shows).
    user_etag = (await client.get(f"/users/{owner.id}")).headers["etag"]
    changed = await client.patch(
        f"/items/{item['id']}", json={"title": "Desk lamp"}, headers=owner.headers
    )
    assert changed.headers["etag"] == '"2"'
    assert (await client.get(f"/users/{owner.id}")).headers["etag"] != user_etag
    stale = await client.get(f"/items/{item['id']}", headers={"If-None-Match": '"1"'})
    assert stale.status_code == 200


async def test_a_stale_if_match_is_412_and_changes_nothing(
    client: AsyncClient, database: Database
) -> None:
    owner = await new_account(client)
    item = await create_item(client, owner, "Lamp")
    url = f"/items/{item['id']}"
    assert (await client.patch(url, json={"title": "v2"}, headers=owner.headers)).status_code == 200

    for method, body in (("PATCH", {"title": "lost update"}), ("DELETE", None)):
        response = await client.request(
            method, url, json=body, headers={**owner.headers, "If-Match": '"1"'}
        )
        assert response.status_code == 412, method
        assert "nothing was saved" in response.json()["detail"]
        assert response.headers["etag"] == '"2"'  # where it is now
    assert (await client.get(url)).json()["title"] == "v2"

    current = (await client.get(url)).headers["etag"]
    response = await client.patch(
        url, json={"title": "v3"}, headers={**owner.headers, "If-Match": f'"0", {current}'}
    )
    assert response.status_code == 200
    assert response.json()["version"] == 3
    star = await client.delete(url, headers={**owner.headers, "If-Match": "*"})
    assert star.status_code == 204
    assert await database.scalar("SELECT count(*) FROM items") == 0

    # The account: its ETag covers its items, and If-Match guards its changes too.
    me = (await client.get("/users/me", headers=owner.headers)).headers["etag"]
    await create_item(client, owner, "new since that ETag")
    stale = await client.patch(
        "/users/me", json={"email": "x@example.com"}, headers={**owner.headers, "If-Match": me}
    )
    assert stale.status_code == 412
    stale_delete = await client.delete("/users/me", headers={**owner.headers, "If-Match": me})
    assert stale_delete.status_code == 412
    current = (await client.get("/users/me", headers=owner.headers)).headers["etag"]
    assert stale.headers["etag"] == stale_delete.headers["etag"] == current
    changed = await client.patch(
        "/users/me",
        json={"email": "x@example.com"},
        headers={**owner.headers, "If-Match": current},
    )
    assert changed.status_code == 200
    assert changed.json()["email"] == "x@example.com"


async def test_two_writers_holding_one_etag_one_wins(
    client: AsyncClient, database: Database
) -> None:
    owner = await new_account(client)
    for round_ in range(10):
        item = await create_item(client, owner, f"item {round_}")
        url = f"/items/{item['id']}"
        etag = (await client.get(url)).headers["etag"]
        first, second = await asyncio.gather(
            *(
                client.patch(
                    url, json={"title": title}, headers={**owner.headers, "If-Match": etag}
                )
                for title in ("first writer", "second writer")
            )
        )
        assert sorted([first.status_code, second.status_code]) == [200, 412], round_
        winner = first if first.status_code == 200 else second
        stored = await database.scalar("SELECT title FROM items WHERE id = :id", id=item["id"])
        assert stored == winner.json()["title"]
        assert (await client.get(url)).json()["version"] == 2


async def test_if_match_can_be_required(database: Database) -> None:
    async with serve(create_app(make_settings(database.url, require_if_match=True))) as client:
        owner = await new_account(client)
        item = await create_item(client, owner, "Lamp")
        url = f"/items/{item['id']}"
        for method, path, body in (
            ("PATCH", url, {"title": "x"}),
            ("DELETE", url, None),
            ("PATCH", "/users/me", {"email": "y@example.com"}),
            ("DELETE", "/users/me", None),
        ):
            response = await client.request(method, path, json=body, headers=owner.headers)
            assert response.status_code == 428, (method, path)
        etag = (await client.get(url)).headers["etag"]
        response = await client.patch(
            url, json={"title": "x"}, headers={**owner.headers, "If-Match": etag}
        )
        assert response.status_code == 200


# Not `*` nor a list of quoted entity tags (RFC 9110).
MALFORMED = ("1", "1, 2", '"1', '"1" x', "W/1", '"1";', "", " ", ",", "**", '* , "1"')


async def test_a_malformed_if_match_is_400_and_changes_nothing(
    client: AsyncClient, database: Database
) -> None:
    owner = await new_account(client)
    item = await create_item(client, owner, "Lamp")
    url = f"/items/{item['id']}"
    for value in MALFORMED:
        for method, path, body in (
            ("PATCH", url, {"title": "changed"}),
            ("DELETE", url, None),
            ("PATCH", "/users/me", {"email": "changed@example.com"}),
            ("DELETE", "/users/me", None),
        ):
            headers = {**owner.headers, "If-Match": value}
            response = await client.request(method, path, json=body, headers=headers)
            assert response.status_code == 400, (value, method, path)
            assert "double quotes" in response.json()["detail"]
    assert (await client.get(url)).json() == item
    assert (await client.get("/users/me", headers=owner.headers)).json()["email"] == owner.email
    assert await database.scalar("SELECT count(*) FROM items") == 1


async def test_well_formed_lists_of_entity_tags_are_understood(client: AsyncClient) -> None:
    owner = await new_account(client)
    # Empty list elements, spaces and tabs, a comma inside a tag, a weak tag beside.
    for value in (' , "x,y" ,, "1" ', '\t"1"\t', 'W/"1", "1"'):
        item = await create_item(client, owner, "Lamp")
        url = f"/items/{item['id']}"
        assert (await client.get(url, headers={"If-None-Match": value})).status_code == 304, value
        headers = {**owner.headers, "If-Match": value}
        response = await client.patch(url, json={"title": "Desk lamp"}, headers=headers)
        assert response.status_code == 200, value
    headers = {**owner.headers, "If-Match": 'W/"2"'}
    weak = await client.patch(url, json={"title": "x"}, headers=headers)
    assert weak.status_code == 412  # If-Match compares strongly: a weak tag never matches


async def test_a_malformed_if_none_match_is_ignored(client: AsyncClient) -> None:
    owner = await new_account(client)
    item = await create_item(client, owner, "Lamp")
    url = f"/items/{item['id']}"
    assert (await client.get(url, headers={"If-None-Match": '"1"'})).status_code == 304
    for value in ('"1", 1', "1", '"1" x', ""):
        response = await client.get(url, headers={"If-None-Match": value})
        assert response.status_code == 200, value  # answered in full, as without it
        assert response.json() == item
        assert response.headers["etag"] == '"1"'


async def test_who_asks_is_judged_before_which_version(
    client: AsyncClient, database: Database
) -> None:
    # Every route judges in one order: who asks (401), what exists (404), whose it is
    # (403), which version (412). A deactivated account's stale ETag is a 401.
    owner = await new_account(client)
    item = await create_item(client, owner)
    stale = {**owner.headers, "If-Match": '"stale"'}
    other = await new_account(client)
    await database.execute("UPDATE users SET is_active = false WHERE id = :id", id=owner.id)
    assert (
        await client.patch("/users/me", json={"email": "n@example.com"}, headers=stale)
    ).status_code == 401
    assert (await client.delete("/users/me", headers=stale)).status_code == 401
    assert (
        await client.patch(f"/items/{item['id']}", json={"title": "x"}, headers=stale)
    ).status_code == 401
    # Another's item, at a stale version: 403, not 412.
    foreign = {**other.headers, "If-Match": '"stale"'}
    assert (
        await client.patch(f"/items/{item['id']}", json={"title": "x"}, headers=foreign)
    ).status_code == 403
    # An item that does not exist, at a stale version: 404.
    assert (await client.delete("/items/999999", headers=foreign)).status_code == 404
    assert await database.scalar("SELECT count(*) FROM users WHERE id = :id", id=owner.id) == 1
