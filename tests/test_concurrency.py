"""Many requests at once, on few connections: each gets its own, right, answer.

Behind PgBouncer in transaction mode (the `pgbouncer` backend), statements of
different requests share server connections; a driver that names its prepared
statements per connection then gets errors or, worse, another statement's rows.
"""

import asyncio
from typing import Any

from httpx import Response

from app.main import create_app
from tests.databases import Database, make_settings, serve
from tests.helpers import create_item, new_account


async def test_concurrent_requests_get_their_own_answers(database: Database) -> None:
    # Answers, not speed, are checked here: under a slow CI machine the last of a
    # burst may queue for the pool longer than the default timeout of the tests.
    settings = make_settings(database.url, db_pool_size=10, db_pool_timeout=30, read_batch_size=8)
    async with serve(create_app(settings)) as client:
        accounts = [await new_account(client) for _ in range(12)]
        items = {a.id: await create_item(client, a, f"item of {a.id}") for a in accounts}

        async def one_round() -> None:
            requests: list[tuple[Any, Any]] = []
            for account in accounts * 6:
                item = items[account.id]
                requests += [
                    (client.get(f"/users/{account.id}"), ("user", account.id)),
                    (client.get("/users/me", headers=account.headers), ("me", account.id)),
                    (client.get(f"/items/{item['id']}"), ("item", item["id"])),
                    (client.get(f"/items/?owner_id={account.id}"), ("owned", account.id)),
                ]
            answers = await asyncio.gather(*(request for request, _ in requests))
            for answer, (_, expected) in zip(answers, requests, strict=True):
                _check(answer, expected, items)

        await one_round()
        await one_round()  # and still right after a burst


def _check(answer: Response, expected: tuple[str, int], items: dict[int, Any]) -> None:
    kind, key = expected
    assert answer.status_code == 200, (kind, key, answer.text)
    body = answer.json()
    if kind in ("user", "me"):
        assert body["id"] == key, (kind, key, body)
        assert body["items"] == [items[key]], (kind, key, body)
    elif kind == "item":
        assert body["id"] == key, (kind, body)
    else:
        assert [item["owner_id"] for item in body] == [key], (kind, key, body)
