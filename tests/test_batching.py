"""GET /users/{id}: concurrent look-ups answered together, each with its own answer."""

import asyncio

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import event

from app.main import create_app
from app.platform.batching import Coalescer
from tests.databases import Database, engine_of, make_settings, serve, unreachable
from tests.helpers import create_item, new_account


def count_queries(app: FastAPI) -> list[str]:
    statements: list[str] = []
    event.listen(
        engine_of(app).sync_engine,
        "before_cursor_execute",
        lambda _conn, _cursor, statement, *_: statements.append(statement),
    )
    return statements


async def test_concurrent_reads_get_their_own_users_from_one_query(
    app: FastAPI, client: AsyncClient
) -> None:
    accounts = [await new_account(client) for _ in range(6)]
    for n, account in enumerate(accounts):
        for title in range(n):
            await create_item(client, account, f"item {title}")
    expected = {a.id: (await client.get(f"/users/{a.id}")).json() for a in accounts}
    ids = [a.id for a in accounts] * 5 + [987654]  # repeats, and one that does not exist

    statements = count_queries(app)
    responses = await asyncio.gather(*(client.get(f"/users/{user_id}") for user_id in ids))

    for user_id, response in zip(ids, responses, strict=True):
        if user_id == 987654:
            assert response.status_code == 404
            assert response.json() == {"detail": "User not found"}
        else:
            assert response.status_code == 200
            assert response.json() == expected[user_id]
            assert len(response.json()["items"]) == accounts.index(
                next(a for a in accounts if a.id == user_id)
            )
    assert len(statements) < len(ids) / 4, statements


async def test_a_read_after_a_write_sees_it(client: AsyncClient) -> None:
    owner = await new_account(client)
    for n in range(5):
        item = await create_item(client, owner, f"item {n}")
        views = await asyncio.gather(*(client.get(f"/users/{owner.id}") for _ in range(5)))
        assert all(v.json()["items"][-1] == item for v in views)


async def test_a_failing_batch_fails_each_of_its_requests_with_503(database: Database) -> None:
    async with serve(create_app(make_settings(unreachable(database)))) as client:
        responses = await asyncio.gather(*(client.get(f"/users/{n}") for n in range(1, 9)))
    assert {r.status_code for r in responses} == {503}


async def test_reads_work_unbatched_too(database: Database) -> None:
    async with serve(create_app(make_settings(database.url, read_batch_size=1))) as client:
        owner = await new_account(client)
        item = await create_item(client, owner)
        responses = await asyncio.gather(*(client.get(f"/users/{owner.id}") for _ in range(4)))
        assert all(r.json() == {**owner.user, "items": [item]} for r in responses)
        assert (await client.get("/users/999")).status_code == 404


# The coalescer itself, without a database.


async def test_a_cancelled_look_up_leaves_the_rest_of_its_batch_alone() -> None:
    release = asyncio.Event()
    calls: list[list[int]] = []

    async def fetch(keys: list[int]) -> dict[int, str]:
        calls.append(keys)
        await release.wait()
        return {key: f"value {key}" for key in keys}

    coalescer: Coalescer[int, str] = Coalescer(fetch, max_batch=10)
    lookups = [asyncio.create_task(coalescer.get(key)) for key in (1, 2, 2, 3)]
    await asyncio.sleep(0)  # the look-ups register
    await asyncio.sleep(0)  # the batch goes out
    lookups[1].cancel()
    release.set()
    results = await asyncio.gather(*lookups, return_exceptions=True)
    assert calls == [[1, 2, 3]]
    assert results[0] == "value 1"
    assert isinstance(results[1], asyncio.CancelledError)
    assert results[2:] == ["value 2", "value 3"]
    await coalescer.close()


async def test_batches_are_capped_and_errors_reach_every_waiter() -> None:
    calls: list[list[int]] = []

    async def fetch(keys: list[int]) -> dict[int, int]:
        calls.append(keys)
        if 13 in keys:
            raise RuntimeError("database on fire")
        return {key: key * 10 for key in keys if key != 4}

    coalescer: Coalescer[int, int] = Coalescer(fetch, max_batch=5)
    results = await asyncio.gather(
        *(coalescer.get(key) for key in range(1, 16)), return_exceptions=True
    )
    assert calls == [[1, 2, 3, 4, 5], [6, 7, 8, 9, 10], [11, 12, 13, 14, 15]]
    assert results[:10] == [10, 20, 30, None, 50, 60, 70, 80, 90, 100]
    assert all(isinstance(r, RuntimeError) for r in results[10:])
    with pytest.raises(RuntimeError):
        await coalescer.get(13)
