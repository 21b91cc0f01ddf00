"""Browser access from other origins (CORS), as the server answers it.

CORS_ORIGINS lists the web origins whose pages may call the API; unset, nothing changes:
no Access-Control-* header, and a preflight gets 405 as before. What a real browser does
with these answers: tests/test_cors_browser.py.
"""

from collections.abc import AsyncIterator

import pytest
from httpx import AsyncClient, Response
from pydantic import ValidationError

from app.main import create_app
from app.platform.settings import Settings
from tests.databases import Database, make_settings, serve
from tests.helpers import create_item, new_account

ORIGIN = "http://app.example:8080"
ELSEWHERE = "http://elsewhere.example"
REQUEST_HEADERS = {
    "authorization",
    "content-type",
    "if-match",
    "if-none-match",
    "idempotency-key",
    "consistency-token",
}
EXPOSED = {
    "etag",
    "x-request-id",
    "link",
    "retry-after",
    "idempotent-replayed",
    "consistency-token",
}
# Every method the routes answer, with a path that has it.
ROUTES = [
    ("GET", "/items/"),
    ("POST", "/items/"),
    ("PATCH", "/items/1"),
    ("DELETE", "/items/1"),
    ("POST", "/users/"),
    ("PATCH", "/users/me"),
    ("DELETE", "/users/me"),
    ("POST", "/auth/token"),
]


@pytest.fixture
async def cors_client(database: Database) -> AsyncIterator[AsyncClient]:
    async with serve(create_app(make_settings(database.url, cors_origins=[ORIGIN]))) as client:
        yield client


async def preflight(client: AsyncClient, path: str, method: str, origin: str) -> Response:
    return await client.options(
        path,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": ", ".join(sorted(REQUEST_HEADERS)),
        },
    )


def listed(response: Response, header: str) -> set[str]:
    return {value.strip().lower() for value in response.headers.get(header, "").split(",")} - {""}


def cors_headers(response: Response) -> set[str]:
    return {name for name in response.headers if name.lower().startswith("access-control-")}


async def test_without_cors_origins_nothing_changes(client: AsyncClient) -> None:
    response = await preflight(client, "/items/", "POST", ORIGIN)
    assert response.status_code == 405
    assert cors_headers(response) == set()
    response = await client.get("/items/", headers={"Origin": ORIGIN})
    assert response.status_code == 200
    assert cors_headers(response) == set()


async def test_a_preflight_from_a_listed_origin_allows_what_the_api_uses(
    cors_client: AsyncClient,
) -> None:
    for method, path in ROUTES:
        response = await preflight(cors_client, path, method, ORIGIN)
        assert response.status_code == 200, (method, path, response.text)
        assert response.headers["access-control-allow-origin"] == ORIGIN
        assert listed(response, "access-control-allow-methods") >= {
            "get",
            "post",
            "patch",
            "delete",
        }
        assert listed(response, "access-control-allow-headers") >= REQUEST_HEADERS
        assert "access-control-allow-credentials" not in response.headers  # tokens, no cookies
        assert int(response.headers["access-control-max-age"]) > 0
        assert "origin" in listed(response, "vary")


async def test_answers_to_a_listed_origin_can_be_read_errors_included(
    cors_client: AsyncClient,
) -> None:
    owner = await new_account(cors_client)
    item = await create_item(cors_client, owner)
    with_origin = {"Origin": ORIGIN}
    answers = [
        await cors_client.get(f"/items/{item['id']}", headers=with_origin),
        await cors_client.get("/items/", headers=with_origin),
        await cors_client.patch(
            f"/items/{item['id']}",
            json={"title": "changed"},
            headers=owner.headers | with_origin | {"If-Match": '"1"'},
        ),
        await cors_client.get("/items/999999", headers=with_origin),  # 404
        await cors_client.post("/items/", json={"title": "x"}, headers=with_origin),  # 401
        await cors_client.get("/items/", params={"limit": 0}, headers=with_origin),  # 422
    ]
    assert [answer.status_code for answer in answers] == [200, 200, 200, 404, 401, 422]
    for answer in answers:
        assert answer.headers["access-control-allow-origin"] == ORIGIN
        assert listed(answer, "access-control-expose-headers") == EXPOSED
        assert "origin" in listed(answer, "vary")


async def test_other_origins_and_other_methods_are_not_allowed(cors_client: AsyncClient) -> None:
    refused = await preflight(cors_client, "/items/", "POST", ELSEWHERE)
    assert refused.status_code == 400
    assert "access-control-allow-origin" not in refused.headers
    answer = await cors_client.get("/items/", headers={"Origin": ELSEWHERE})
    assert answer.status_code == 200  # answered, but the browser keeps it from the page
    assert "access-control-allow-origin" not in answer.headers
    for method in ("PUT", "CONNECT", "TRACE"):
        response = await preflight(cors_client, "/items/1", method, ORIGIN)
        assert response.status_code == 400, method
        assert method.lower() not in listed(response, "access-control-allow-methods")


def test_cors_origins_are_read_comma_separated_and_checked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CORS_ORIGINS", " https://app.example.com, http://127.0.0.1:5173 ,")
    assert Settings(_env_file=None).cors_origins == [
        "https://app.example.com",
        "http://127.0.0.1:5173",
    ]
    monkeypatch.setenv("CORS_ORIGINS", "*")
    assert Settings(_env_file=None).cors_origins == ["*"]
    monkeypatch.delenv("CORS_ORIGINS")
    assert Settings(_env_file=None).cors_origins == []
    # What a browser never sends as an origin would silently match nothing: refused.
    for wrong in ("https://app.example.com/", "app.example.com", "https://app.example.com/ui"):
        monkeypatch.setenv("CORS_ORIGINS", wrong)
        with pytest.raises(ValidationError, match="is not an origin"):
            Settings(_env_file=None)
