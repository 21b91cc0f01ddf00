"""SIGTERM: with SHUTDOWN_DRAIN_SECONDS, first a drain (readiness 503, everything else
served, new connections accepted); then requests under way get the grace period, new
connections are refused, what still runs then is cancelled and rolled back, and the
process exits."""

import asyncio
import contextlib
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.databases import PROJECT_ROOT, Database, migrate
from tests.faults import (
    application_name,
    backends,
    eventually,
    postgres_only,
    table_locked,
)
from tests.helpers import PASSWORD, new_account, unique_email
from tests.servers import START_TIMEOUT, free_port, production_env, serving

GRACE = 3  # seconds: GRACEFUL_SHUTDOWN_TIMEOUT for this test (8 by default)
# For the lifespan's shutdown and the interpreter's exit, on a machine that may be
# busy; without the grace period's end, the process would wait for the lock timeout.
MARGIN = 5.0
LOCK_TIMEOUT = 60


async def test_sigterm_lets_requests_finish_then_cancels_what_still_waits(
    database: Database, tmp_path: Path
) -> None:
    postgres_only(database)
    name = application_name()
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(PROJECT_ROOT),
        "DATABASE_URL": database.url,
        "ENVIRONMENT": "test",
        "PORT": str(port),
        "ACCESS_LOG": "false",
        "GRACEFUL_SHUTDOWN_TIMEOUT": str(GRACE),
        "DB_APPLICATION_NAME": name,
        # Lock waits longer than the grace period: only the shutdown ends them.
        "DB_LOCK_TIMEOUT": str(LOCK_TIMEOUT),
        "DB_STATEMENT_TIMEOUT": str(LOCK_TIMEOUT),
        "DB_COMMAND_TIMEOUT": str(LOCK_TIMEOUT + 1),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "app",
        cwd=tmp_path,  # no .env there
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:

            async def started() -> bool:
                try:
                    return (await client.get("/health")).status_code == 200
                except httpx.TransportError:
                    return False

            await eventually(started, within=START_TIMEOUT, every=0.1)

            # Reads of items wait for one lock, which is released during the grace
            # period; reads of users wait for another, which outlasts it.
            async with table_locked(database, "users"):
                async with table_locked(database, "items"):
                    finishing = [asyncio.create_task(client.get("/items/")) for _ in range(3)]
                    stuck = [asyncio.create_task(client.get("/users/")) for _ in range(3)]

                    async def all_waiting() -> bool:
                        return (await backends(database, name)).get("waiting", 0) == 6

                    await eventually(all_waiting, within=30)
                    process.send_signal(signal.SIGTERM)
                    signalled = time.monotonic()
                    # Soon after the signal, and before the process exits: the requests
                    # under way keep it running until they end or the grace period does.
                    refused = await _refused_within(port, GRACE / 2)
                    assert process.returncode is None
                finished = await asyncio.gather(*finishing)
                exit_code = await asyncio.wait_for(process.wait(), GRACE + MARGIN + 5)
                exited = time.monotonic() - signalled
                cancelled = await asyncio.gather(*stuck, return_exceptions=True)

                async def no_backend_left() -> bool:
                    return not await backends(database, name)

                # Each notices its client is gone within a second (the server's
                # client_connection_check_interval), long before the lock timeout.
                gone = await eventually(no_backend_left, within=10)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    stderr = (await process.stderr.read()).decode() if process.stderr else ""
    assert refused, "a new connection was accepted after SIGTERM"
    assert [r.status_code for r in finished] == [200, 200, 200]
    for answer in cancelled:  # rolled back, and told to retry
        assert isinstance(answer, httpx.Response), (answer, stderr)
        assert answer.status_code == 503
        assert answer.headers["retry-after"] == "1"
        assert answer.json() == {"detail": "Shutting down, retry later"}
    assert stderr.count("cancelled on GET /users/: shutting down") == 3, stderr
    # uvicorn exits by the signal it was sent, once it has shut down.
    assert exit_code == -signal.SIGTERM, stderr
    assert GRACE <= exited < GRACE + MARGIN, exited
    print(f"SIGTERM: exit {exited:.2f} s after (grace {GRACE} s); backends gone {gone:.2f} s later")


async def _refused_within(port: int, seconds: float) -> bool:
    """Whether a new connection is refused within `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except ConnectionRefusedError:
            return True
        writer.close()
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)


async def test_a_retry_after_the_server_was_killed_mid_request_runs_within_the_lease(
    database: Database, tmp_path: Path
) -> None:
    # The process serving the first request is killed (SIGKILL) while the request holds
    # its Idempotency-Key: nothing releases it. A retry, to a new process, runs within
    # the lease, and exactly one item exists in the end.
    postgres_only(database)
    lease = 5.0  # IDEMPOTENCY_KEY_LEASE's default
    env = production_env(database.url, ACCESS_LOG="false")
    async with table_locked(database, "items"):
        with serving(env, tmp_path) as first_server:
            async with httpx.AsyncClient(base_url=first_server.url, timeout=30) as client:
                owner = await new_account(client)
                request: dict[str, Any] = {
                    "method": "POST",
                    "url": "/items/",
                    "json": {"title": "once"},
                    "headers": {**owner.headers, "Idempotency-Key": "killed mid-request"},
                }
                sent = time.monotonic()  # the lease starts once the server has it: later
                first = asyncio.create_task(client.request(**request))

                async def claimed() -> bool:
                    count = await database.scalar("SELECT count(*) FROM idempotency_keys")
                    return bool(count == 1)

                await eventually(claimed, within=30)
                first_server.process.kill()
                killed = time.monotonic()
                with contextlib.suppress(httpx.TransportError):
                    await first
    with serving(env, tmp_path) as second_server:
        async with httpx.AsyncClient(base_url=second_server.url, timeout=30) as client:
            while (response := await client.request(**request)).status_code == 409:
                assert time.monotonic() - killed < lease + 30, "the key stayed held"
                await asyncio.sleep(0.2)
            answered = time.monotonic()
    waited = answered - killed
    assert response.status_code == 200, response.text
    assert "idempotent-replayed" not in response.headers
    assert await database.column("SELECT id FROM items") == [response.json()["id"]]
    # Not sooner than the lease from the first request's start: until then it could have
    # been running still (the kill came a little after the start).
    assert answered - sent >= lease
    print(f"retry after SIGKILL: answered {waited:.2f} s after the kill")


DRAIN = 4.0  # seconds: SHUTDOWN_DRAIN_SECONDS for the drain's test


def _gauge(metrics: str, name: str) -> float | None:
    for line in metrics.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def _on_a_new_connection(url: str, method: str, path: str, **options: Any) -> httpx.Response:
    # Each on its own connection: accepted during the drain, and, with several workers,
    # by any of them.
    with httpx.Client(base_url=url, timeout=30, trust_env=False) as client:
        return client.request(method, path, headers={"Connection": "close"}, **options)


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_drains_first_readiness_503_while_everything_else_is_served(
    tmp_path: Path, workers: int
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'app.db'}"
    migrate(url)
    env = production_env(
        url, SHUTDOWN_DRAIN_SECONDS=str(DRAIN), GRACEFUL_SHUTDOWN_TIMEOUT=str(GRACE)
    )
    with serving(env, tmp_path, "--workers", str(workers), ready_path="/health/ready") as server:
        # Every worker has started (each keeps DB_POOL_SIZE=10 connections' worth of pool):
        # one still starting would stop at once.
        deadline = time.monotonic() + START_TIMEOUT
        metrics = ""
        while _gauge(metrics, "db_pool_size") != 10 * workers:
            assert time.monotonic() < deadline, metrics
            time.sleep(0.2)
            metrics = _on_a_new_connection(server.url, "GET", "/metrics").text
        server.process.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        while (
            first := _on_a_new_connection(server.url, "GET", "/health/ready")
        ).status_code == 200:
            assert time.monotonic() - signalled < DRAIN / 2, "readiness stayed 200"
            time.sleep(0.05)
        time.sleep(0.3)  # with two workers, the second's signal follows the first's
        rounds = 0
        while time.monotonic() - signalled < DRAIN - 1:
            ready = _on_a_new_connection(server.url, "GET", "/health/ready")
            assert ready.status_code == 503, ready.text
            assert ready.headers["retry-after"] == "1"
            assert ready.json() == {"detail": "shutting down: this server takes no new requests"}
            assert _on_a_new_connection(server.url, "GET", "/health/live").status_code == 200
            assert _on_a_new_connection(server.url, "GET", "/items/").status_code == 200
            account = {"email": unique_email(), "password": PASSWORD}
            signed_up = _on_a_new_connection(server.url, "POST", "/users/", json=account)
            assert signed_up.status_code == 200, signed_up.text
            assert server.process.poll() is None
            rounds += 1
        status = server.process.wait(timeout=DRAIN + GRACE + MARGIN + 10)
        exited = time.monotonic() - signalled
        with pytest.raises(httpx.ConnectError):
            _on_a_new_connection(server.url, "GET", "/health/live")
    assert first.status_code == 503
    assert rounds >= 3, rounds
    assert DRAIN <= exited < DRAIN + GRACE + MARGIN + 10, exited
    # uvicorn exits by the signal it was sent; its supervisor with 0.
    assert status == (-signal.SIGTERM if workers == 1 else 0), server.output()
    print(f"SIGTERM with a {DRAIN:g} s drain, {workers} worker(s): exit {exited:.2f} s after")
