"""What the fault tests share: PostgreSQL only, timed requests, a lock holder, the
app's backends in pg_stat_activity, and the app served over real TCP."""

import asyncio
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest
import uvicorn
from fastapi import FastAPI
from httpx import AsyncClient, Response

from tests.databases import Database, checked_out, dsn, engine_of
from tests.helpers import Account, unique_email


def postgres_only(database: Database) -> None:
    if database.backend != "postgresql":
        pytest.skip("PostgreSQL only: SQLite has no network, no server-side timeouts")


def application_name() -> str:
    """A name of the test's own for the app's connections (pg_stat_activity)."""
    return f"test-{uuid.uuid4().hex[:12]}"


@asynccontextmanager
async def table_locked(database: Database, *tables: str) -> AsyncIterator[None]:
    """Another session holds ACCESS EXCLUSIVE locks on `tables` until the block ends."""
    holder = await asyncpg.connect(dsn(database.url))
    try:
        async with holder.transaction():
            await holder.execute(f"LOCK TABLE {', '.join(tables)} IN ACCESS EXCLUSIVE MODE")
            yield
    finally:
        await holder.close()


@asynccontextmanager
async def row_locked(database: Database, table: str, row_id: int) -> AsyncIterator[None]:
    """Another session holds the row `id = row_id` of `table` FOR UPDATE until the block
    ends (which also holds back inserts whose foreign key names that row)."""
    holder = await asyncpg.connect(dsn(database.url))
    try:
        async with holder.transaction():
            await holder.execute(f"SELECT 1 FROM {table} WHERE id = $1 FOR UPDATE", row_id)  # noqa: S608
            yield
    finally:
        await holder.close()


async def backends(database: Database, name: str) -> dict[str, int]:
    """The app's backends by state ('active', 'idle', 'idle in transaction', ...);
    'waiting' counts those of them waiting for a lock."""
    monitor = await asyncpg.connect(dsn(database.url))
    try:
        rows = await monitor.fetch(
            "SELECT state, wait_event_type FROM pg_stat_activity WHERE application_name = $1",
            name,
        )
    finally:
        await monitor.close()
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["state"]] = counts.get(row["state"], 0) + 1
        if row["wait_event_type"] == "Lock":
            counts["waiting"] = counts.get("waiting", 0) + 1
    return counts


async def eventually(check: Any, *, within: float, every: float = 0.05) -> float:
    """Seconds until `await check()` is true; fails after `within` seconds."""
    start = time.monotonic()
    while not await check():
        elapsed = time.monotonic() - start
        assert elapsed < within, f"not true after {within} s"
        await asyncio.sleep(every)
    return time.monotonic() - start


async def warm_pool(app: FastAPI, connections: int) -> None:
    """Fill the running app's pool with idle connections."""
    async with AsyncExitStack() as stack:
        for _ in range(connections):
            connection = await stack.enter_async_context(engine_of(app).connect())
            await connection.exec_driver_sql("SELECT 1")
    assert checked_out(app) == 0


@dataclass
class Timed:
    name: str
    response: Response
    seconds: float


def database_requests(owner: Account, item: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """One request of each kind that needs the database: reads, batched reads,
    one-statement writes, transactions, log-in, sign-up. (Readiness has its own test:
    it says why it is not ready.)"""
    item_url = f"/items/{item['id']}"
    return [
        ("GET /users/{id}", {"method": "GET", "url": f"/users/{owner.id}"}),
        ("GET /users/", {"method": "GET", "url": "/users/"}),
        ("GET /items/{id}", {"method": "GET", "url": item_url}),
        ("GET /items/", {"method": "GET", "url": "/items/?q=thing"}),
        ("GET /users/me", {"method": "GET", "url": "/users/me", "headers": owner.headers}),
        (
            "POST /items/",
            {
                "method": "POST",
                "url": "/items/",
                "json": {"title": "new"},
                "headers": owner.headers,
            },
        ),
        (
            "PATCH /items/{id}",
            {"method": "PATCH", "url": item_url, "json": {"title": "x"}, "headers": owner.headers},
        ),
        (
            "POST /users/",
            {
                "method": "POST",
                "url": "/users/",
                "json": {"email": unique_email(), "password": "long enough"},
            },
        ),
        (
            "POST /auth/token",
            {
                "method": "POST",
                "url": "/auth/token",
                "data": {"username": owner.email, "password": owner.password},
            },
        ),
    ]


async def timed(client: AsyncClient, name: str, request: dict[str, Any]) -> Timed:
    start = time.monotonic()
    response = await client.request(**request)
    return Timed(name, response, time.monotonic() - start)


Requests = Callable[[], list[tuple[str, dict[str, Any]]]]


async def burst(client: AsyncClient, requests: Requests, times: int) -> list[Timed]:
    """Every request `times` over, all at once."""
    return await asyncio.gather(
        *(timed(client, name, request) for _ in range(times) for name, request in requests())
    )


@contextmanager
def served_over_tcp(app: FastAPI) -> Iterator[str]:
    """The app behind a real uvicorn server, in a thread with its own event loop,
    as production serves it; yields its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            assert thread.is_alive(), "the server did not start"
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()
    assert not thread.is_alive()
