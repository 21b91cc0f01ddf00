"""What operators see: request ids, access lines, JSON logs with no secrets, metrics."""

import asyncio
import contextlib
import json
import logging
import os
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from httpx import AsyncClient

from app.main import create_app
from app.platform.errors import Unavailable
from app.platform.logs import AccessRecord
from tests.databases import Database, engine_of, make_settings, migrate, serve, unreachable
from tests.helpers import PASSWORD, create_item, new_account, unique_email
from tests.servers import START_TIMEOUT, concurrent_gets, production_env, serving

REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")


def _json_lines(output: str) -> list[dict[str, Any]]:
    lines = [line for line in output.splitlines() if line.strip()]
    return [json.loads(line) for line in lines]  # every line is one JSON object


async def test_every_response_carries_a_request_id(client: AsyncClient) -> None:
    owner = await new_account(client)
    responses = [
        await client.get("/users/1"),
        await client.get("/users/987654"),  # 404
        await client.get("/items/?limit=1000"),  # 422
        await client.post("/items/", json={"title": "x" * 70_000}, headers=owner.headers),  # 413
        await client.get("/users/me"),  # 401
        await client.get("/nowhere"),  # 404 from the router
        await client.get("/health/live"),
    ]
    assert [r.status_code for r in responses] == [200, 404, 422, 413, 401, 404, 200]
    ids = [r.headers["x-request-id"] for r in responses]
    assert all(REQUEST_ID.fullmatch(i) for i in ids)
    assert len(set(ids)) == len(ids)
    mine = await client.get("/users/1", headers={"X-Request-ID": "trace-42.a_b"})
    assert mine.headers["x-request-id"] == "trace-42.a_b"
    for bad in ("", "x" * 129, "has space", "semi;colon"):
        replaced = await client.get("/users/1", headers={"X-Request-ID": bad})
        assert replaced.headers["x-request-id"] != bad
        assert REQUEST_ID.fullmatch(replaced.headers["x-request-id"])


async def test_an_unhandled_error_is_a_500_with_its_request_id(database: Database) -> None:
    app = create_app(make_settings(database.url))

    @app.get("/broken")
    async def broken() -> None:
        raise RuntimeError("a bug")

    async with serve(app, raise_app_exceptions=False) as client:
        response = await client.get("/broken", headers={"X-Request-ID": "bug-1"})
    assert response.status_code == 500
    assert response.json() == {"detail": "Internal Server Error"}
    assert response.headers["x-request-id"] == "bug-1"


def test_json_logs_access_lines_and_no_secrets(tmp_path: Path) -> None:
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'app.db'}"
    migrate(database_url)
    env = production_env(database_url, LOG_FORMAT="json", LOG_LEVEL="INFO")
    email, new_password = unique_email(), "another long passphrase"
    with serving(env, tmp_path) as server, httpx.Client(base_url=server.url) as client:
        signed_up = client.post("/users/", json={"email": email, "password": PASSWORD})
        user_id = signed_up.json()["id"]
        token = client.post("/auth/token", data={"username": email, "password": PASSWORD}).json()[
            "access_token"
        ]
        auth = {"Authorization": f"Bearer {token}", "X-Request-ID": "change-password"}
        changed = client.patch(
            "/users/me",
            json={"password": new_password, "current_password": PASSWORD},
            headers=auth,
        )
        assert changed.status_code == 200
        refused = client.post("/users/", json={"email": "not an email", "password": PASSWORD})
        assert refused.status_code == 422
        wrong = client.post("/auth/token", data={"username": email, "password": "wrong " * 3})
        assert wrong.status_code == 401
        client.get("/health/ready")
        client.get("/health/live")
        server.stop()
    output = server.output()
    lines = _json_lines(output)
    access = [line for line in lines if line["logger"] == "app.access"]
    routes = [(line["method"], line["route"], line["status"]) for line in access]
    assert routes == [
        ("POST", "/users/", 200),
        ("POST", "/auth/token", 200),
        ("PATCH", "/users/me", 200),
        ("POST", "/users/", 422),
        ("POST", "/auth/token", 401),
    ]  # health checks stay out at info level
    for line in access:
        assert REQUEST_ID.fullmatch(line["request_id"])
        assert isinstance(line["duration_ms"], float)
        assert line["timestamp"]
    assert access[2]["user_id"] == user_id
    assert access[2]["request_id"] == "change-password"
    assert access[0]["user_id"] is None
    assert any(line["logger"].startswith("uvicorn") for line in lines)  # same format
    # Nothing secret in any line: passwords, tokens, the Authorization header, hashes.
    for secret in (PASSWORD, new_password, token, "Bearer", "$argon2", "wrong wrong"):
        assert secret not in output, secret


def test_db_echo_logs_statements_as_json_lines(database: Database, tmp_path: Path) -> None:
    pgbouncer = {"DB_PGBOUNCER": "true"} if database.backend == "pgbouncer" else {}
    env = production_env(database.url, DB_ECHO="true", LOG_FORMAT="json", **pgbouncer)
    email = unique_email()
    with serving(env, tmp_path) as server, httpx.Client(base_url=server.url) as client:
        user = client.post("/users/", json={"email": email, "password": PASSWORD}).json()
        assert client.get(f"/users/{user['id']}").status_code == 200
        server.stop()
    output = server.output()
    lines = _json_lines(output)  # every line: statements are not printed beside the log
    statements = [line for line in lines if line["logger"] == "sqlalchemy.engine.Engine"]
    events = [line["event"] for line in statements]
    assert any(event.startswith("INSERT INTO users") for event in events), events
    assert any(event.startswith("SELECT users.email") for event in events), events
    assert all(line["request_id"] for line in statements if "INSERT INTO users" in line["event"])
    for secret in (email, PASSWORD, "$argon2"):  # the parameters stay out
        assert secret not in output, secret


def test_console_lines_name_only_what_is_there(tmp_path: Path) -> None:
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'app.db'}"
    migrate(database_url)
    env = production_env(database_url, LOG_FORMAT="console", LOG_LEVEL="INFO")
    with serving(env, tmp_path) as server, httpx.Client(base_url=server.url) as client:
        assert client.get("/users/1").status_code == 404
        server.stop()
    access = [line for line in server.output().splitlines() if "[app.access]" in line]
    assert len(access) == 1
    assert "route=/users/{user_id} status=404" in access[0]
    assert "taskName" not in server.output()


async def test_metrics_count_requests_by_route_template(client: AsyncClient) -> None:
    owner = await new_account(client)
    for user_id in (owner.id, owner.id, 987654):
        await client.get(f"/users/{user_id}")
    await client.get("/nowhere/at/all")
    text = (await client.get("/metrics")).text
    samples = _samples(text)
    assert samples['http_requests_total{method="GET",route="/users/{user_id}",status="200"}'] == 2
    assert samples['http_requests_total{method="GET",route="/users/{user_id}",status="404"}'] == 1
    assert samples['http_requests_total{method="GET",route="unmatched",status="404"}'] == 1
    assert (
        samples['http_request_duration_seconds_count{method="GET",route="/users/{user_id}"}'] == 3
    )
    for gauge in (
        "http_requests_in_flight",
        "db_pool_size",
        "db_pool_checked_out",
        "db_pool_overflow",
        "db_pool_waiting",
        "password_hash_queue_length",
    ):
        assert gauge in samples, gauge
    assert samples["db_pool_checked_out"] == samples["db_pool_waiting"] == 0
    assert samples["http_requests_in_flight"] == 1  # the scrape itself


async def test_a_413_is_logged_and_counted_for_the_route_it_was_for(
    client: AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="app.access")
    owner = await new_account(client)
    item = await create_item(client, owner)
    large = b"x" * 70_000

    async def streamed() -> AsyncIterator[bytes]:  # no Content-Length: counted as read
        for _ in range(7):
            yield b"x" * 10_000

    responses = [
        await client.post("/items/", content=large, headers=owner.headers),
        await client.request("DELETE", f"/items/{item['id']}", content=large),
        await client.request("PUT", f"/items/{item['id']}", content=large),  # not a method of it
        await client.post("/nowhere", content=large),
        await client.post("/users/", content=streamed()),
    ]
    assert [r.status_code for r in responses] == [413] * 5
    expected = [
        ("POST", "/items/"),
        ("DELETE", "/items/{item_id}"),
        ("PUT", "/items/{item_id}"),
        ("POST", "unmatched"),
        ("POST", "/users/"),
    ]
    access = [vars(record) for record in caplog.records if record.name == "app.access"]
    logged = [(line["method"], line["route"]) for line in access if line["status"] == 413]
    assert logged == expected
    samples = _samples((await client.get("/metrics")).text)
    for method, route in expected:
        key = f'http_requests_total{{method="{method}",route="{route}",status="413"}}'
        assert samples[key] == 1


async def test_the_pool_and_hashing_queue_show_while_busy(database: Database) -> None:
    settings = make_settings(database.url, real_hashing=True, password_hash_concurrency=1)
    async with serve(create_app(settings)) as client:
        sign_ups = [
            asyncio.create_task(
                client.post("/users/", json={"email": unique_email(), "password": PASSWORD})
            )
            for _ in range(4)
        ]
        # Scraped until it shows them queued, or they are all done (on any machine,
        # the last two wait for two hashes).
        while True:
            busy = _samples((await client.get("/metrics")).text)
            if busy["password_hash_queue_length"] >= 2 or all(s.done() for s in sign_ups):
                break
            await asyncio.sleep(0.01)
        await asyncio.gather(*sign_ups)
        idle = _samples((await client.get("/metrics")).text)
    assert busy["password_hash_queue_length"] >= 2
    assert idle["password_hash_queue_length"] == 0


async def test_metrics_can_be_switched_off(database: Database) -> None:
    async with serve(create_app(make_settings(database.url, metrics_enabled=False))) as client:
        assert (await client.get("/metrics")).status_code == 404
        assert (await client.get("/users/1")).status_code == 404


def _unavailable(reason: str) -> str:
    return f'http_unavailable_total{{reason="{reason}"}}'


async def test_503s_are_counted_by_reason_each_shown_before_its_first(
    database: Database,
) -> None:
    app = create_app(make_settings(unreachable(database)))
    async with serve(app) as client:
        before = _samples((await client.get("/metrics")).text)
        assert (await client.get("/users/1")).status_code == 503
        assert (await client.get("/health/ready")).status_code == 503
        after = _samples((await client.get("/metrics")).text)
    counted = {name for name in before if name.startswith("http_unavailable_total")}
    assert counted == {_unavailable(reason) for reason in Unavailable}
    assert {before[name] for name in counted} == {0}
    dropped = {
        name: n for name, n in before.items() if name.startswith("http_connections_dropped_total")
    }
    assert dropped == {
        f'http_connections_dropped_total{{reason="{reason}"}}': 0
        for reason in (
            "too many connections",
            "request head too large",
            "request head not received in time",
            "silent",
        )
    }
    assert after[_unavailable("database unavailable")] == 1
    assert after[_unavailable("not ready")] == 1
    assert sum(after[name] for name in counted) == 2


async def test_an_exhausted_pool_a_full_hashing_queue_and_a_cancelled_request_are_told_apart(
    database: Database,
) -> None:
    settings = make_settings(
        database.url,
        real_hashing=True,
        password_hash_queue=1,
        db_pool_size=1,
        db_max_overflow=0,
        db_pool_timeout=1,
    )
    app = create_app(settings)

    @app.get("/slow")
    async def slow() -> None:
        await asyncio.sleep(60)

    async with serve(app) as client:
        # The pool's only connection held: a request waits for it, then gives up.
        async with engine_of(app).connect() as held:
            await held.exec_driver_sql("SELECT 1")
            queued = asyncio.create_task(client.get("/users/1"))
            waiting = await _metrics_once(client, lambda m: m["db_pool_waiting"] == 1)
            assert waiting["db_pool_checked_out"] == 1
            assert (await queued).status_code == 503
        assert _samples((await client.get("/metrics")).text)["db_pool_waiting"] == 0
        # Sign-ups past PASSWORD_HASH_QUEUE (1) get 503 at once.
        sign_ups = await asyncio.gather(
            *(
                client.post("/users/", json={"email": unique_email(), "password": PASSWORD})
                for _ in range(4)
            )
        )
        statuses = sorted(response.status_code for response in sign_ups)
        assert statuses[0] == 200
        assert statuses[-1] == 503
        # Cancelled, as the server cancels what still runs when its shutdown's grace
        # period is over.
        cancelled = asyncio.create_task(client.get("/slow"))
        await _metrics_once(client, lambda m: m["http_requests_in_flight"] == 2)
        cancelled.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await cancelled
        counted = _samples((await client.get("/metrics")).text)
    assert counted[_unavailable("pool exhausted")] == 1
    assert counted[_unavailable("hashing queue full")] == statuses.count(503)
    assert counted[_unavailable("shutting down")] == 1
    assert counted[_unavailable("database unavailable")] == 0
    assert _unavailable("other") not in counted


async def _metrics_once(
    client: AsyncClient, condition: Callable[[dict[str, float]], bool]
) -> dict[str, float]:
    """The metrics, once they meet `condition` (within 10 s)."""
    for _ in range(1000):
        samples = _samples((await client.get("/metrics")).text)
        if condition(samples):
            return samples
        await asyncio.sleep(0.01)
    raise AssertionError(f"the metrics never got there: {samples}")


def _samples(text: str) -> dict[str, float]:
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    return samples


def test_two_workers_both_answer_and_metrics_add_up(tmp_path: Path) -> None:
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'app.db'}"
    migrate(database_url)
    scratch = tmp_path / "tmp"  # where the workers' metrics files go, while they run
    scratch.mkdir()
    env = production_env(database_url, LOG_FORMAT="json", TMPDIR=str(scratch))
    with serving(env, tmp_path, "--workers", "2") as server:
        assert [path.name[:12] for path in scratch.iterdir()] == ["app-metrics-"]
        # The first worker answers as soon as it has started; on a busy machine the
        # other may need seconds more.
        deadline = time.monotonic() + START_TIMEOUT
        while len(_workers(server.output(), event="Application startup complete.")) < 2:
            assert time.monotonic() < deadline, server.output()
            time.sleep(0.1)
        # Waves of new connections at once, until both workers have accepted some: the
        # kernel hands each to whichever worker asks first, and one may keep winning
        # for a while. Every request sent is counted.
        sent = 0
        deadline = time.monotonic() + START_TIMEOUT
        while len(_workers(server.output(), route="/users/{user_id}")) < 2:
            assert time.monotonic() < deadline, f"one worker took all {sent} requests"
            statuses = asyncio.run(concurrent_gets(server.url, "/users/1", 100))
            assert statuses == [404] * 100
            sent += 100
        with httpx.Client(base_url=server.url) as client:
            totals = [
                _samples(client.get("/metrics", headers={"Connection": "close"}).text)
                for _ in range(6)
            ]
        server.stop()
    assert len(_workers(server.output(), route="/users/{user_id}")) == 2  # both answered
    key = 'http_requests_total{method="GET",route="/users/{user_id}",status="404"}'
    # Whichever worker answers the scrape, it counts both workers' requests.
    assert {total[key] for total in totals} == {sent}
    assert list(scratch.iterdir()) == []  # and nothing of them is left behind


def _workers(output: str, **fields: str) -> set[int]:
    """The processes that logged a line with these fields."""
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    return {line["pid"] for line in lines if fields.items() <= line.items()}


# Two processes writing access lines to one pipe, as workers share the server's stderr.
_WRITER = """
import asyncio, logging, sys
from app.platform.logs import AccessRecord, configure_logging, access_log
from app.platform.settings import Settings

configure_logging(Settings(log_format="json"), stream=sys.stderr)

async def main() -> None:
    for turn in range(400):
        for n in range(50):  # many lines in one loop turn: written together
            access_log.handle(AccessRecord(20, "GET", "/items/" + "x" * (n * 7), 200, 1.0, turn))
        await asyncio.sleep(0)

asyncio.run(main())
"""


def test_workers_sharing_one_pipe_never_split_each_others_lines() -> None:
    reader, writer = os.pipe()
    command = [sys.executable, "-c", _WRITER]
    workers = [subprocess.Popen(command, stderr=writer) for _ in range(2)]  # noqa: S603 - fixed
    os.close(writer)
    with os.fdopen(reader, "rb") as pipe:
        output = pipe.read()  # until both have exited
    assert [worker.wait() for worker in workers] == [0, 0]
    lines = [json.loads(line) for line in output.decode().splitlines()]  # each one whole
    assert len(lines) == 2 * 400 * 50  # none lost, the last turn's included
    assert len({line["pid"] for line in lines}) == 2


def test_an_access_record_has_every_field_a_formatter_may_name() -> None:
    standard = logging.makeLogRecord({})
    record = AccessRecord(logging.INFO, "GET", "/users/{user_id}", 200, 1.5, None)
    assert set(vars(standard)) <= set(vars(record))
    line = logging.Formatter(
        "%(asctime)s %(name)s %(levelname)s %(filename)s:%(lineno)d %(process)d %(message)s"
    ).format(record)
    assert line.endswith(f"app.access INFO logs.py:0 {os.getpid()} GET /users/{{user_id}} 200")
