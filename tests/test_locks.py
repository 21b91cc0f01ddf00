"""Requests stuck behind a lock end as 503s and give their connection back, also when
their clients hang up."""

import asyncio
import time
from typing import Any

import httpx
import pytest

from app.main import create_app
from tests.databases import Database, checked_out, make_settings, serve
from tests.faults import (
    application_name,
    backends,
    eventually,
    postgres_only,
    served_over_tcp,
    table_locked,
    timed,
)
from tests.helpers import create_item, new_account

# How a statement waiting for a lock ends: the lock timeout (the default, 2 s), or
# the statement timeout when there is no lock timeout. The other timeouts are set far
# beyond the bound below, so an answer within it comes from the one under test.
ENDED_BY: dict[str, tuple[dict[str, Any], float]] = {
    "lock_timeout": ({"db_statement_timeout": 30, "db_command_timeout": 31}, 2.0),
    "statement_timeout": (
        {"db_lock_timeout": 0, "db_statement_timeout": 1.5, "db_command_timeout": 31},
        1.5,
    ),
}
# What the answer may take beyond the timeout: the request's own work, on a machine
# that may be busy.
LATE = 3.0


@pytest.mark.parametrize("ended_by", ENDED_BY)
async def test_a_request_stuck_behind_a_lock_is_503_and_returns_its_connection(
    database: Database, ended_by: str
) -> None:
    postgres_only(database)
    overrides, timeout = ENDED_BY[ended_by]
    name = application_name()
    app = create_app(make_settings(database.url, db_application_name=name, **overrides))
    async with serve(app) as client:
        owner = await new_account(client)
        item = await create_item(client, owner)
        item_url = f"/items/{item['id']}"
        requests: list[dict[str, Any]] = [
            {"method": "GET", "url": item_url},
            {"method": "GET", "url": f"/users/{owner.id}"},
            {"method": "PATCH", "url": item_url, "json": {"title": "x"}, "headers": owner.headers},
            {"method": "POST", "url": "/items/", "json": {"title": "y"}, "headers": owner.headers},
        ]
        async with table_locked(database, "items"):
            answers = await asyncio.gather(*(timed(client, "", r) for r in requests))
            assert checked_out(app) == 0
            assert (await backends(database, name)).get("idle in transaction", 0) == 0
        for answer in answers:
            assert answer.response.status_code == 503, answer.response.text
            assert answer.response.headers["retry-after"] == "1"
            assert answer.response.json() == {"detail": "Database unavailable, retry later"}
            assert timeout - 0.1 < answer.seconds < timeout + LATE, answer.seconds
        assert (await client.get(item_url)).json()["title"] == item["title"]
        for request in requests:
            assert (await client.request(**request)).is_success
    slowest = max(answer.seconds for answer in answers)
    print(f"{ended_by}: 503 after {slowest:.2f} s at most")


async def test_clients_hanging_up_behind_a_lock_leave_no_connection_or_transaction_behind(
    database: Database,
) -> None:
    postgres_only(database)
    name = application_name()
    app = create_app(make_settings(database.url, db_application_name=name))
    with served_over_tcp(app) as base_url:
        async with httpx.AsyncClient(base_url=base_url) as client:
            owner = await new_account(client)
            item = await create_item(client, owner, "before")
            item_url = f"/items/{item['id']}"
            token = owner.headers["Authorization"]
            body = b'{"title": "abandoned"}'
            change = (
                f"PATCH {item_url} HTTP/1.1\r\nHost: test\r\nAuthorization: {token}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
            ).encode() + body
            read = f"GET {item_url} HTTP/1.1\r\nHost: test\r\n\r\n".encode()

            async with table_locked(database, "items"):
                clients = []
                for i in range(100):
                    _, writer = await asyncio.open_connection("127.0.0.1", httpx.URL(base_url).port)
                    writer.write(change if i % 2 else read)
                    clients.append(writer)

                async def waiting_for_the_lock() -> bool:
                    return (await backends(database, name)).get("waiting", 0) > 0

                await eventually(waiting_for_the_lock, within=30)
                for writer in clients:  # the clients hang up
                    writer.close()
                hung_up_at = time.monotonic()

                async def all_returned() -> bool:
                    states = await backends(database, name)
                    busy = states.get("active", 0) + states.get("idle in transaction", 0)
                    return checked_out(app) == 0 and busy == 0

                cleared = await eventually(all_returned, within=15, every=0.1)
                states = await backends(database, name)
                assert states.get("idle in transaction", 0) == 0, states
                assert checked_out(app) == 0
            assert time.monotonic() - hung_up_at < 15

            # Nothing the abandoned requests did was saved, and the next requests work.
            assert (await client.get(item_url)).json()["title"] == "before"
            answers = await asyncio.gather(
                *(
                    client.patch(item_url, json={"title": f"after {i}"}, headers=owner.headers)
                    for i in range(20)
                ),
                *(client.get(item_url) for _ in range(20)),
            )
            assert [a.status_code for a in answers] == [200] * 40
            assert checked_out(app) == 0
    print(f"100 hung-up clients: pool and backends clear {cleared:.2f} s after they left")
