"""Retried POSTs with an Idempotency-Key create once and replay the first response."""

import asyncio
from typing import Any

import pytest
from httpx import AsyncClient, Response

from app.api.dependencies import state_of
from app.main import create_app
from tests.databases import Database, make_settings, serve
from tests.faults import eventually, postgres_only, row_locked
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
        hasher = state_of(app).passwords
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


async def test_a_retry_takes_over_a_key_whose_hold_lapsed(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The first sign-up stalls (held in its hashing) past its hold on the key: a retry
    # then runs anew instead of getting 409, and the stalled first one, once it
    # resumes, saves nothing.
    app = create_app(make_settings(database.url, idempotency_key_lease=0.2))
    async with serve(app) as client:
        hasher = state_of(app).passwords
        hashing, release = asyncio.Event(), asyncio.Event()
        hash_password = hasher.hash
        calls = 0

        async def first_held(*args: Any, **kwargs: Any) -> str:
            nonlocal calls
            calls += 1
            if calls == 1:
                hashing.set()
                await release.wait()
            return await hash_password(*args, **kwargs)

        monkeypatch.setattr(hasher, "hash", first_held)
        body = {"email": unique_email(), "password": PASSWORD}
        first = asyncio.create_task(_post(client, "/users/", body, "stalled"))
        await asyncio.wait_for(hashing.wait(), timeout=30)
        await asyncio.sleep(0.3)  # longer than the hold
        retry = await _post(client, "/users/", body, "stalled")
        assert retry.status_code == 200, retry.text
        assert "idempotent-replayed" not in retry.headers
        release.set()
        assert (await first).status_code != 200  # its account exists: the retry's
        replay = await _post(client, "/users/", body, "stalled")
        assert replay.headers["idempotent-replayed"] == "true"
        assert replay.json() == retry.json()
    assert await database.scalar("SELECT count(*) FROM users") == 1


async def test_a_request_that_lost_its_key_to_a_retry_saves_nothing(database: Database) -> None:
    # Both the first request and the retry that took its key over are held by a real
    # row lock (the owner's, which an item's foreign key check needs) until both have
    # written their item; whichever order they then finish in, only the one holding
    # the key keeps its item: the other's transaction rolls back, with 409.
    postgres_only(database)
    settings = make_settings(database.url, idempotency_key_lease=0.3, db_lock_timeout=30)
    async with serve(create_app(settings)) as client:
        owner = await new_account(client)
        url, body = f"/users/{owner.id}/items/", {"title": "once"}
        async with row_locked(database, "users", owner.id):
            first = asyncio.create_task(_post(client, url, body, "fenced", owner.headers))
            await eventually(lambda: _held(database), within=30)
            (first_claim,) = await database.column("SELECT claimed_by FROM idempotency_keys")
            await asyncio.sleep(0.5)  # the first's hold lapses while it waits
            retry = asyncio.create_task(_post(client, url, body, "fenced", owner.headers))
            await eventually(lambda: _held(database, other_than=first_claim), within=30)
        answers = [(await first).status_code, (await retry).status_code]
        assert answers == [409, 200], answers
        items = await database.column("SELECT id FROM items")
        assert items == [(await retry).json()["id"]]
        replay = await _post(client, url, body, "fenced", owner.headers)
        assert replay.json() == (await retry).json()


async def _held(database: Database, *, other_than: str | None = None) -> bool:
    """Whether one request holds the key (another than `other_than`)."""
    claims = await database.column("SELECT claimed_by FROM idempotency_keys")
    return len(claims) == 1 and claims[0] != other_than


async def test_the_same_json_with_other_whitespace_or_key_order_is_the_same_request(
    client: AsyncClient, database: Database
) -> None:
    owner = await new_account(client)
    headers = {**owner.headers, "Idempotency-Key": "spelling", "Content-Type": "application/json"}
    first = await client.post(
        "/items/", content=b'{"title": "Lamp", "description": "brass"}', headers=headers
    )
    assert first.status_code == 200, first.text
    retry = await client.post(
        "/items/", content=b'{\n  "description":"brass",\n  "title":"Lamp"\n}', headers=headers
    )
    assert retry.status_code == 200, retry.text
    assert retry.headers["idempotent-replayed"] == "true"
    assert retry.json() == first.json()
    assert await database.scalar("SELECT count(*) FROM items") == 1
    other = await client.post("/items/", content=b'{"title": "Lamp"}', headers=headers)
    assert other.status_code == 422


async def test_a_replay_carries_the_first_responses_etag(client: AsyncClient) -> None:
    owner = await new_account(client)
    first = await _post(client, "/items/", {"title": "Lamp"}, "etag", owner.headers)
    replay = await _post(client, "/items/", {"title": "Lamp"}, "etag", owner.headers)
    assert first.headers["etag"] == '"1"'
    assert replay.headers["etag"] == first.headers["etag"]
    user = await _post(client, "/users/", {"email": unique_email(), "password": PASSWORD}, "u")
    user_replay = await _post(
        client, "/users/", {"email": user.json()["email"], "password": PASSWORD}, "u"
    )
    assert user_replay.headers["idempotent-replayed"] == "true"
    assert user_replay.headers["etag"] == user.headers["etag"]


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
