"""Whatever a client sends, the answer is a clear 4xx and nothing changes."""

import json

import pytest
from httpx import AsyncClient

from tests.conftest import Database
from tests.helpers import PASSWORD, new_account, unique_email

JSON = {"content-type": "application/json"}


async def assert_nothing_written(database: Database, users: int = 0) -> None:
    assert await database.scalar("SELECT count(*) FROM users") == users
    assert await database.scalar("SELECT count(*) FROM items") == 0


@pytest.mark.parametrize(
    "raw",
    [b"{", b'{"email": "a@example.com",', b"not json", b"[]", b"null", b'"a string"', b"\xff\xfe"],
)
async def test_malformed_bodies_are_422(
    client: AsyncClient, database: Database, raw: bytes
) -> None:
    response = await client.post("/users/", content=raw, headers=JSON)
    assert response.status_code == 422
    assert isinstance(response.json()["detail"], list)
    await assert_nothing_written(database)


async def test_a_body_that_is_not_json_is_422(client: AsyncClient, database: Database) -> None:
    response = await client.post(
        "/users/", content=b"email=a@example.com", headers={"content-type": "text/plain"}
    )
    assert response.status_code == 422
    await assert_nothing_written(database)


async def test_an_oversized_body_is_413(client: AsyncClient, database: Database) -> None:
    body = b'{"email": "a@example.com", "password": "' + b"x" * 100_000 + b'"}'
    response = await client.post("/users/", content=body, headers=JSON)
    assert response.status_code == 413
    await assert_nothing_written(database)


@pytest.mark.parametrize(
    "path",
    [
        "/users/99999999999999999999999",
        "/users/2147483648",
        "/users/0",
        "/users/-1",
        "/users/1.5",
        "/users/abc",
        "/users/1e3",
    ],
)
async def test_ids_out_of_range_or_not_integers_are_422(client: AsyncClient, path: str) -> None:
    response = await client.get(path)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["path", "user_id"]


async def test_the_largest_id_is_simply_not_found(client: AsyncClient) -> None:
    response = await client.get("/users/2147483647")
    assert response.status_code == 404


async def test_huge_ids_in_write_paths_are_422(client: AsyncClient, database: Database) -> None:
    account = await new_account(client)
    for method, path in (
        ("POST", "/users/99999999999999999999/items/"),
        ("PATCH", "/items/99999999999999999999"),
        ("DELETE", "/items/2147483648"),
    ):
        response = await client.request(method, path, json={"title": "x"}, headers=account.headers)
        assert response.status_code == 422, path
    await assert_nothing_written(database, users=1)


@pytest.mark.parametrize(
    "title", ["nul\x00byte", "\ud800 unpaired surrogate"], ids=["nul", "surrogate"]
)
async def test_text_the_database_cannot_store_is_422(
    client: AsyncClient, database: Database, title: str
) -> None:
    account = await new_account(client)
    for url, body in (
        (f"/users/{account.id}/items/", {"title": title}),
        ("/items/", {"title": title}),
        ("/users/", {"email": unique_email(), "password": PASSWORD + title}),
    ):
        # Valid JSON: json.dumps escapes both characters (\u0000, \ud800).
        response = await client.post(
            url, content=json.dumps(body), headers={**JSON, **account.headers}
        )
        assert response.status_code == 422, body
    await assert_nothing_written(database, users=1)


async def test_unicode_text_round_trips(client: AsyncClient) -> None:
    account = await new_account(client, password="pässwörd ☃ 🔑")
    response = await client.post(
        f"/users/{account.id}/items/",
        json={"title": "Ünïcødé ☃", "description": "多言語 🚀"},
        headers=account.headers,
    )
    assert response.status_code == 200
    assert response.json()["title"] == "Ünïcødé ☃"
    assert (await client.get(f"/users/{account.id}")).json()["items"][0][
        "description"
    ] == "多言語 🚀"


async def test_unknown_routes_and_methods_are_4xx(client: AsyncClient) -> None:
    assert (await client.get("/nowhere")).status_code == 404
    assert (await client.delete("/items/")).status_code == 405


async def test_text_the_database_cannot_compare_is_422_in_queries_and_forms(
    client: AsyncClient,
) -> None:
    for path in ("/items/?q=%00", "/items/?q=a%00b"):
        response = await client.get(path)
        assert response.status_code == 422, path
    response = await client.post(
        "/auth/token", data={"username": "a\x00@example.com", "password": "x"}
    )
    assert response.status_code == 422
