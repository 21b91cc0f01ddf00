"""Whatever a client sends, the answer is a clear 4xx and nothing changes."""

import json
from typing import Any

import pytest
from httpx import AsyncClient

from tests.databases import Database
from tests.helpers import PASSWORD, create_item, new_account, unique_email

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


async def test_an_oversized_body_is_the_documented_413_on_deletes_too(
    client: AsyncClient, database: Database
) -> None:
    # Any method but GET and HEAD may carry a body, so DELETE can meet the limit too.
    account = await new_account(client)
    item = await create_item(client, account)
    spec = (await client.get("/openapi.json")).json()
    for path, url in (("/items/{item_id}", f"/items/{item['id']}"), ("/users/me", "/users/me")):
        assert "413" in spec["paths"][path]["delete"]["responses"], path
        response = await client.request(
            "DELETE", url, content=b"x" * 100_000, headers=account.headers
        )
        assert response.status_code == 413, url
    assert await database.scalar("SELECT count(*) FROM items") == 1
    assert await database.scalar("SELECT count(*) FROM users") == 1


@pytest.mark.parametrize(
    "path",
    [
        "/users/99999999999999999999999",
        "/users/2147483648",
        "/users/0",
        "/users/-1",
        "/users/1.5",
        "/users/1.0",
        "/users/abc",
        "/users/1e3",
        "/users/1_0",
        "/users/+1",
        "/users/%201",
        "/users/%EF%BC%91",  # a full-width digit one
    ],
)
async def test_ids_out_of_range_or_not_integers_are_422(client: AsyncClient, path: str) -> None:
    response = await client.get(path)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["path", "user_id"]


@pytest.mark.parametrize(
    ("url", "loc"),
    [
        ("/users/?after=1.0", ["query", "after"]),
        ("/users/?skip=1.0", ["query", "skip"]),
        ("/users/?limit=1.0", ["query", "limit"]),
        ("/items/?after=1.0", ["query", "after"]),
        ("/items/?skip=1.0", ["query", "skip"]),
        ("/items/?limit=1.0", ["query", "limit"]),
        ("/items/?owner_id=1.0", ["query", "owner_id"]),
        ("/items/?limit=1_0", ["query", "limit"]),
        ("/items/?skip=%201", ["query", "skip"]),
        ("/items/1.0", ["path", "item_id"]),
        ("/users/1.0/items/", ["path", "user_id"]),
    ],
)
async def test_integer_parameters_are_digits_only(
    client: AsyncClient, url: str, loc: list[str]
) -> None:
    # The schema says integer: "1.0" is refused, not read as 1 (found by the fuzz run).
    account = await new_account(client)
    response = await client.request(
        "POST" if url.endswith("/items/") else "GET",
        url,
        json={"title": "x"},
        headers=account.headers,
    )
    assert response.status_code == 422, url
    assert [error["loc"] for error in response.json()["detail"]] == [loc]


async def test_integer_parameters_in_digits_are_read(client: AsyncClient) -> None:
    account = await new_account(client)
    item = await create_item(client, account)
    user_id, item_id = account.id, item["id"]
    pages = {
        f"/users/?after={user_id - 1}&skip=0&limit=1": user_id,
        f"/items/?after={item_id - 1}&skip=0&limit=1&owner_id={user_id}": item_id,
    }
    for url, expected in pages.items():
        response = await client.get(url)
        assert response.status_code == 200, url
        assert [row["id"] for row in response.json()] == [expected], url
    for url, expected in {
        f"/users/{user_id}": user_id,
        f"/items/{item_id}": item_id,
        f"/items/0{item_id}": item_id,  # leading zeros: still that integer
    }.items():
        response = await client.get(url)
        assert response.status_code == 200, url
        assert response.json()["id"] == expected, url


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


NUL = "a\x00b"
# A request, and where its one error is: only the field, never pydantic's own names
# for the validators or union members (the fuzz run found `function-after[...]` there).
REFUSED_FIELDS = [
    ("POST", "/users/", {"email": "a@example.com", "password": f"{PASSWORD}{NUL}"}, "password"),
    ("POST", "/users/", {"email": "no email", "password": PASSWORD}, "email"),
    ("PATCH", "/users/me", {"email": "no email"}, "email"),
    ("PATCH", "/users/me", {"email": None}, "email"),
    ("PATCH", "/users/me", {"email": 12}, "email"),
    (
        "PATCH",
        "/users/me",
        {"password": f"{PASSWORD}{NUL}", "current_password": PASSWORD},
        "password",
    ),
    ("PATCH", "/users/me", {"password": "short", "current_password": PASSWORD}, "password"),
    ("PATCH", "/users/me", {"password": None}, "password"),
    (
        "PATCH",
        "/users/me",
        {"password": f"new {PASSWORD}", "current_password": NUL},
        "current_password",
    ),
    ("PATCH", "/users/me", {"current_password": None}, "current_password"),
    ("POST", "/items/", {"title": NUL}, "title"),
    ("POST", "/items/", {"title": "a", "description": NUL}, "description"),
    ("POST", "/users/{me}/items/", {"title": NUL}, "title"),
    ("POST", "/users/{me}/items/", {"title": "a", "description": NUL}, "description"),
    ("PATCH", "/items/{item}", {"title": NUL}, "title"),
    ("PATCH", "/items/{item}", {"title": None}, "title"),
    ("PATCH", "/items/{item}", {"title": 1}, "title"),
    ("PATCH", "/items/{item}", {"title": " "}, "title"),
    ("PATCH", "/items/{item}", {"title": "x" * 256}, "title"),
    ("PATCH", "/items/{item}", {"description": NUL}, "description"),
    ("PATCH", "/items/{item}", {"description": 1}, "description"),
]


@pytest.mark.parametrize(("method", "url", "body", "field"), REFUSED_FIELDS)
async def test_a_refused_field_is_named_alone(
    client: AsyncClient, method: str, url: str, body: dict[str, Any], field: str
) -> None:
    account = await new_account(client)
    item = await create_item(client, account)
    response = await client.request(
        method,
        url.format(me=account.id, item=item["id"]),
        content=json.dumps(body),  # NUL as \u0000: valid JSON
        headers={**JSON, **account.headers},
    )
    assert response.status_code == 422, response.text
    assert [error["loc"] for error in response.json()["detail"]] == [["body", field]]
    assert (await client.get(f"/items/{item['id']}")).json() == item  # nothing changed


@pytest.mark.parametrize(
    ("form", "field"),
    [
        ({"username": f"a{NUL}@example.com", "password": PASSWORD}, "username"),
        ({"username": "a@example.com", "password": NUL}, "password"),
        ({"username": "a@example.com", "password": PASSWORD, "scope": NUL}, "scope"),
    ],
)
async def test_a_refused_log_in_field_is_named_alone(
    client: AsyncClient, form: dict[str, str], field: str
) -> None:
    response = await client.post("/auth/token", data=form)
    assert response.status_code == 422
    assert [error["loc"] for error in response.json()["detail"]] == [["body", field]]


@pytest.mark.parametrize("q", [NUL, "\x00", "x" * 256])
async def test_a_refused_search_is_named_alone(client: AsyncClient, q: str) -> None:
    response = await client.get("/items/", params={"q": q})
    assert response.status_code == 422
    assert [error["loc"] for error in response.json()["detail"]] == [["query", "q"]]


async def test_a_405_allows_every_method_of_the_path(client: AsyncClient) -> None:
    # Starlette's 405 named only one route's method (`OPTIONS /items/` -> `Allow: GET`):
    # `Allow` must list every method the OpenAPI document has for the path.
    spec = (await client.get("/openapi.json")).json()
    for path, operations in spec["paths"].items():
        url = path.replace("{user_id}", "1").replace("{item_id}", "1")
        allowed = ", ".join(sorted(method.upper() for method in operations))
        for method in ("OPTIONS", "PUT", "TRACE"):
            response = await client.request(method, url)
            assert response.status_code == 405, (method, url)
            assert response.headers["allow"] == allowed, (method, url)
            assert response.json() == {"detail": "Method Not Allowed"}
    # A path of the docs, outside the document, too.
    assert (await client.post("/docs")).headers["allow"] == "GET, HEAD"
