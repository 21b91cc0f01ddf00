"""Retried POSTs with an Idempotency-Key create once and replay the first response."""

import asyncio
from typing import Any

import pytest
from httpx import AsyncClient, Response

from app.main import create_app
from app.services import services_of
from tests.databases import Database, make_settings, serve
from tests.helpers import PASSWORD, new_account, unique_email


async def _post(
    client: AsyncClient, url: str, body: Any, key: str, headers: dict[str, str] | None = None
) -> Response:
    return await client.post(url, json=body, headers={**(headers or {}), "Idempotency-Key": key})


async def test_a_retry_replays_the_first_response_and_creates_nothing(
    client: AsyncClient, database: Database
) -> None:
    owner = await new_account(client)
    for n, (url, body, headers) in enumerate(
        (
            ("/users/", {"email": unique_email(), "password": PASSWORD}, {}),
            ("/items/", {"title": "Lamp"}, owner.headers),
            (f"/users/{owner.id}/items/", {"title": "Vase"}, owner.headers),
        )
    ):
        first = await _post(client, url, body, f"retry me {n}", headers)
        assert first.status_code == 200, first.text
        assert "idempotent-replayed" not in first.headers
        retry = await _post(client, url, body, f"retry me {n}", headers)
        assert retry.status_code == 200
        assert retry.json() == first.json()
        assert retry.headers["idempotent-replayed"] == "true"
    assert await database.scalar("SELECT count(*) FROM users") == 2
    assert await database.scalar("SELECT count(*) FROM items") == 2


async def test_a_key_reused_for_another_request_is_422(
    client: AsyncClient, database: Database
) -> None:
    owner = await new_account(client)
    assert (await _post(client, "/items/", {"title": "a"}, "k", owner.headers)).status_code == 200
    reused = await _post(client, "/items/", {"title": "b"}, "k", owner.headers)
    assert reused.status_code == 422
    assert reused.json()["detail"][0]["loc"] == ["header", "Idempotency-Key"]
    assert await database.column("SELECT title FROM items") == ["a"]
    # Keys belong to their caller: another account's same key is its own.
    other = await new_account(client)
    assert (await _post(client, "/items/", {"title": "b"}, "k", other.headers)).status_code == 200


async def test_a_retry_while_the_first_runs_is_409(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = create_app(make_settings(database.url))
    async with serve(app) as client:
        # The first sign-up is held in its hashing, holding its key, until the retry
        # has been answered (however slow the machine).
        hasher = services_of(app).passwords
        hashing, release = asyncio.Event(), asyncio.Event()
        hash_password = hasher.hash

        async def held(*args: Any, **kwargs: Any) -> str:
            hashing.set()
            await release.wait()
            return await hash_password(*args, **kwargs)

        monkeypatch.setattr(hasher, "hash", held)
        body = {"email": unique_email(), "password": PASSWORD}
        first = asyncio.create_task(_post(client, "/users/", body, "slow"))
        await asyncio.wait_for(hashing.wait(), timeout=30)
        retry = await _post(client, "/users/", body, "slow")
        release.set()
        assert retry.status_code == 409
        assert "retry-after" in retry.headers
        assert (await first).status_code == 200
        assert (await _post(client, "/users/", body, "slow")).json() == (await first).json()
    assert await database.scalar("SELECT count(*) FROM users") == 1


async def test_concurrent_requests_with_one_key_write_once(
    client: AsyncClient, database: Database
) -> None:
    owner = await new_account(client)
    responses = await asyncio.gather(
        *(_post(client, "/items/", {"title": "once"}, "one key", owner.headers) for _ in range(20))
    )
    assert {r.status_code for r in responses} <= {200, 409}
    created = [r.json() for r in responses if r.status_code == 200]
    assert created
    assert all(body == created[0] for body in created)
    assert await database.scalar("SELECT count(*) FROM items") == 1


async def test_a_failed_request_releases_its_key(client: AsyncClient, database: Database) -> None:
    taken = await new_account(client)
    body = {"email": taken.email, "password": PASSWORD}
    for _ in range(2):  # not 409 the second time: the failure released the key
        response = await _post(client, "/users/", body, "sign-up")
        assert response.status_code == 400
    assert await database.scalar("SELECT count(*) FROM idempotency_keys") == 0
    fresh = {"email": unique_email(), "password": PASSWORD}
    assert (await _post(client, "/users/", fresh, "sign-up")).status_code == 200


async def test_keys_expire(client: AsyncClient, database: Database) -> None:
    owner = await new_account(client)
    first = await _post(client, "/items/", {"title": "a"}, "old", owner.headers)
    await database.execute("UPDATE idempotency_keys SET expires_at = '2000-01-01 00:00:00'")
    again = await _post(client, "/items/", {"title": "a"}, "old", owner.headers)
    assert again.status_code == 200
    assert "idempotent-replayed" not in again.headers
    assert again.json()["id"] != first.json()["id"]


async def test_without_a_key_nothing_is_recorded(client: AsyncClient, database: Database) -> None:
    owner = await new_account(client)
    for _ in range(2):
        assert (await client.post("/items/", json={"title": "a"}, headers=owner.headers)).is_success
    assert await database.scalar("SELECT count(*) FROM items") == 2
    assert await database.scalar("SELECT count(*) FROM idempotency_keys") == 0


async def test_bad_keys_are_422(client: AsyncClient) -> None:
    owner = await new_account(client)
    for key in (b"", b"x" * 256, b"tab\tinside", "é".encode()):
        headers = [(name.encode(), value.encode()) for name, value in owner.headers.items()]
        response = await client.post(
            "/items/", json={"title": "a"}, headers=[*headers, (b"Idempotency-Key", key)]
        )
        assert response.status_code == 422, key
