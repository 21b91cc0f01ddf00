"""Failed log-ins are throttled per account and per address; floods cannot starve anyone."""

import asyncio

from httpx import AsyncClient

from app.main import create_app
from tests.databases import Database, client_of, make_settings, serve
from tests.helpers import PASSWORD, sign_up, unique_email


async def _log_in(client: AsyncClient, email: str, password: str) -> int:
    response = await client.post("/auth/token", data={"username": email, "password": password})
    if response.status_code == 429:
        assert int(response.headers["retry-after"]) >= 1
        assert response.json()["detail"] in {
            "Too many failed log-ins; retry later",
            "Too many requests from this address; retry later",
        }
    return response.status_code


async def test_an_account_is_throttled_after_repeated_failures(database: Database) -> None:
    settings = make_settings(database.url, login_max_failures_per_account=3)
    async with serve(create_app(settings)) as client:
        known = await sign_up(client)
        for email in (known["email"], unique_email()):  # known and unknown alike
            assert [await _log_in(client, email, "wrong") for _ in range(3)] == [401] * 3
            assert await _log_in(client, email, "wrong") == 429
        # Even the right password waits for the window to end: the point of it.
        assert await _log_in(client, known["email"], PASSWORD) == 429
        # The counts are in the database: another replica throttles alike.
        async with serve(create_app(settings)) as replica:
            assert await _log_in(replica, known["email"], PASSWORD) == 429
        await database.execute("UPDATE login_failures SET window_ends_at = '2000-01-01'")
        assert await _log_in(client, known["email"], PASSWORD) == 200


async def test_a_successful_log_in_resets_the_account_count(database: Database) -> None:
    settings = make_settings(database.url, login_max_failures_per_account=3)
    async with serve(create_app(settings)) as client:
        user = await sign_up(client)
        for _ in range(3):
            assert [await _log_in(client, user["email"], "wrong") for _ in range(2)] == [401] * 2
            assert await _log_in(client, user["email"], PASSWORD) == 200


async def test_an_address_is_throttled_across_accounts(database: Database) -> None:
    settings = make_settings(database.url, login_max_failures_per_address=4)
    app = create_app(settings)
    async with serve(app) as client, client_of(app, address="10.0.0.9") as elsewhere:
        user = await sign_up(client)
        statuses = [await _log_in(client, unique_email(), "wrong") for _ in range(5)]
        assert statuses == [401] * 4 + [429]
        assert await _log_in(client, user["email"], PASSWORD) == 429
        assert await _log_in(elsewhere, user["email"], PASSWORD) == 200


async def test_a_flood_of_bad_log_ins_does_not_starve_a_good_one(database: Database) -> None:
    # Production hashing and queue bounds; the flood comes from one address.
    settings = make_settings(
        database.url,
        real_hashing=True,
        password_hash_queue=16,
        password_hash_queue_per_address=4,
        login_max_failures_per_address=1000,
        login_max_failures_per_account=1000,
    )
    app = create_app(settings)
    answered: list[int] = []  # the flood's statuses, in the order they came back
    one_hashed = asyncio.Event()

    async def bad_log_in() -> int:
        status = await _log_in(attacker, unique_email(), "wrong password")
        answered.append(status)
        if status == 401:
            one_hashed.set()
        return status

    async with serve(app) as good, client_of(app, address="10.6.6.6") as attacker:
        user = await sign_up(good)
        flood = [asyncio.create_task(bad_log_in()) for _ in range(50)]
        # One of the flood's hashes has just ended: the next of its share of the queue
        # (4) is hashing now, the others wait for their turn.
        await asyncio.wait_for(one_hashed.wait(), 60)
        hashed_before = answered.count(401)
        assert await _log_in(good, user["email"], PASSWORD) == 200
        hashed_meanwhile = answered.count(401) - hashed_before
        statuses = await asyncio.gather(*flood)
    # Past its share of the queue, the flood is refused at once.
    assert statuses.count(429) >= 40, statuses
    assert set(statuses) <= {401, 429}
    # The delay, counted in the flood's own hashes whatever the machine's speed: the
    # good log-in waits for the hash under way, then has its turn. (Turns in order of
    # arrival would make it wait for all of the flood's queued log-ins.)
    assert hashed_meanwhile <= 1, (hashed_meanwhile, answered)


async def test_the_hashing_queue_is_bounded(database: Database) -> None:
    settings = make_settings(
        database.url,
        real_hashing=True,
        password_hash_queue=3,
        password_hash_queue_per_address=1000,
        login_max_failures_per_address=1000,
    )
    answered: list[int] = []  # statuses in the order they came back

    async def wrong_log_in(client: AsyncClient) -> int:
        status = await _log_in(client, unique_email(), "wrong")
        answered.append(status)
        return status

    async with serve(create_app(settings)) as client:
        statuses = await asyncio.gather(*(wrong_log_in(client) for _ in range(10)))
    # Three are queued and answered; the rest are refused at once, except when a
    # hash ends before the last of the ten arrives and frees its place.
    assert set(statuses) == {401, 503}, statuses
    assert 3 <= statuses.count(401) <= 5, statuses
    # At once, whatever a hash costs on this machine: every refusal comes back before
    # a second hash has ended.
    second_hashed = [i for i, status in enumerate(answered) if status == 401][1]
    assert 503 not in answered[second_hashed:], answered
