"""Requests racing each other get answers that make sense; none gets a 500."""

import asyncio

from httpx import AsyncClient

from app.api.dependencies import state_of
from app.main import create_app
from tests.databases import Database, make_settings, serve
from tests.faults import eventually
from tests.helpers import PASSWORD, create_item, log_in, new_account


async def test_concurrent_deletes_of_one_item_give_one_204(client: AsyncClient) -> None:
    owner = await new_account(client)
    for _ in range(10):
        item = await create_item(client, owner)
        url = f"/items/{item['id']}"
        responses = await asyncio.gather(
            *(client.delete(url, headers=owner.headers) for _ in range(3))
        )
        assert sorted(r.status_code for r in responses) == [204, 404, 404]


async def test_changes_racing_a_delete_get_200_or_404(client: AsyncClient) -> None:
    owner = await new_account(client)
    for _ in range(10):
        item = await create_item(client, owner)
        url = f"/items/{item['id']}"
        changes = [client.patch(url, json={"title": "x"}, headers=owner.headers) for _ in range(4)]
        deletion = client.delete(url, headers=owner.headers)
        *patched, deleted = await asyncio.gather(*changes, deletion)
        assert deleted.status_code == 204
        assert {r.status_code for r in patched} <= {200, 404}, [r.text for r in patched]
        assert (await client.get(url)).status_code == 404


async def test_a_password_change_racing_the_account_deletion_is_404(database: Database) -> None:
    # The change, authenticated, takes its turn at the hasher, where real hashing
    # keeps it for two hashes: the deletion commits in between.
    app = create_app(make_settings(database.url, real_hashing=True))
    async with serve(app) as client:
        me = await new_account(client)
        change = asyncio.create_task(
            client.patch(
                "/users/me",
                json={"password": "a new passphrase", "current_password": PASSWORD},
                headers=me.headers,
            )
        )

        async def in_its_turn() -> bool:
            return state_of(app).passwords.queue_length > 0

        await eventually(in_its_turn, within=60, every=0.001)
        assert (await client.delete("/users/me", headers=me.headers)).status_code == 204
        changed = await change
        assert changed.status_code == 404
        assert changed.json() == {"detail": "User not found"}


async def test_a_burst_of_password_checks_does_not_exhaust_the_pool(database: Database) -> None:
    # Two connections, real hashing, a dozen wrong current passwords at once. A
    # request waiting for its turn at the hasher must not hold a connection,
    # or the others (and /health) would time out with 503.
    settings = make_settings(
        database.url, real_hashing=True, db_pool_size=2, db_max_overflow=0, db_pool_timeout=0.5
    )
    async with serve(create_app(settings)) as client:
        me = await new_account(client)
        wrong = {"password": "a new passphrase", "current_password": "not my password"}
        burst = [client.patch("/users/me", json=wrong, headers=me.headers) for _ in range(12)]
        *answers, health = await asyncio.gather(*burst, client.get("/health"))
        assert [r.status_code for r in answers] == [400] * 12
        assert health.status_code == 200
        await log_in(client, me.email)
