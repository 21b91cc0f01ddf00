"""Requests waiting for a connection are served in the order they came."""

import asyncio

from sqlalchemy import text

from app.platform.engine import create_engine
from tests.databases import Database, make_settings


async def test_connections_go_to_the_requests_that_waited_longest(database: Database) -> None:
    settings = make_settings(database.url, db_pool_size=2, db_max_overflow=0, db_pool_timeout=10)
    engine = create_engine(settings)
    served: list[int] = []

    async def request(n: int) -> None:
        async with engine.connect() as connection:
            served.append(n)
            await connection.execute(text("SELECT 1"))
            await asyncio.sleep(0.01)

    try:
        first = [asyncio.create_task(request(n)) for n in range(2)]  # the pool's two
        await asyncio.sleep(0.05)
        waiting = []
        for n in range(2, 12):  # queue up, one after the other
            waiting.append(asyncio.create_task(request(n)))
            await asyncio.sleep(0.001)
        # Newcomers keep arriving while connections come back: they queue too.
        late = []
        for n in range(12, 22):
            late.append(asyncio.create_task(request(n)))
            await asyncio.sleep(0.004)
        await asyncio.gather(*first, *waiting, *late)
    finally:
        await engine.dispose()
    assert sorted(served[:2]) == [0, 1]  # opened at once: either may be first
    assert served[2:] == list(range(2, 22))
