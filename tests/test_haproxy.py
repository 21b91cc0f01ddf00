"""Several `app serve` processes behind HAProxy, configured by deploy/haproxy.cfg (servers
moved to the test's processes: tests/edge.py): requests spread over the ready processes
only, a rolling restart under load that loses nothing, HAProxy's own bounds on slow and
oversized clients, and the client addresses it forwards. Real processes, real sockets,
PostgreSQL."""

import asyncio
import contextlib
import select
import signal
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.databases import Database
from tests.edge import HAProxy, haproxy, server_names
from tests.faults import postgres_only
from tests.helpers import new_account, unique_email
from tests.servers import Server, production_env, start_server

READY = "/health/ready"
GRACE = 5  # seconds: GRACEFUL_SHUTDOWN_TIMEOUT in these tests
# Seconds a stopping process drains: longer than HAProxy's checks take to take it out
# (`inter 1s fall 2` in deploy/haproxy.cfg: about 2 s), as docker-compose.yml sets it.
DRAIN = 4


def _port(server: Server) -> int:
    return int(server.url.rsplit(":", 1)[1])


def _served(server: Server, route: str, method: str = "GET") -> float:
    """Requests of `route` the process has answered (its own /metrics, asked directly)."""
    text = httpx.get(f"{server.url}/metrics", timeout=30, trust_env=False).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "http_requests"
        for sample in family.samples
        if sample.name == "http_requests_total"
        and sample.labels["route"] == route
        and sample.labels["method"] == method
    )


def _dropped(server: Server) -> float:
    """Connections the process dropped before a request (too slow, too large, ...)."""
    text = httpx.get(f"{server.url}/metrics", timeout=30, trust_env=False).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "http_connections_dropped"
        for sample in family.samples
        if sample.name == "http_connections_dropped_total"
    )


@contextlib.contextmanager
def _processes(env: dict[str, str], tmp: Path, count: int) -> Iterator[list[Server]]:
    """`count` single-worker `app serve` processes, ready; SIGTERM at the end (a process
    the test restarted is the list's new entry)."""
    servers: list[Server] = []
    try:
        for _ in range(count):
            servers.append(start_server(env, tmp, ready_path=READY))
        yield servers
    finally:
        for server in servers:
            if server.process.poll() is None:
                server.process.send_signal(signal.SIGINT)  # no drain: the test is over
        for server in servers:
            server.stop()


@contextlib.contextmanager
def _in_front(
    servers: list[Server], tmp: Path, overrides: dict[str, str] | None = None
) -> Iterator[HAProxy]:
    with haproxy([_port(server) for server in servers], tmp, overrides) as proxy:
        for name in server_names(len(servers)):
            proxy.wait_for(name, "UP")
        yield proxy


def test_requests_are_spread_over_the_processes_whose_readiness_is_200(
    database: Database, tmp_path: Path
) -> None:
    postgres_only(database)
    # A long drain: the first process stays draining while the test looks.
    env = production_env(
        database.url, SHUTDOWN_DRAIN_SECONDS="120", GRACEFUL_SHUTDOWN_TIMEOUT=str(GRACE)
    )
    with (
        _processes(env, tmp_path, 2) as servers,
        _in_front(servers, tmp_path) as proxy,
        httpx.Client(base_url=proxy.url, timeout=30, trust_env=False) as client,
    ):
        before = [_served(server, "/items/") for server in servers]
        for _ in range(20):
            assert client.get("/items/").status_code == 200
        spread = [_served(s, "/items/") - b for s, b in zip(servers, before, strict=True)]
        assert sum(spread) == 20
        assert min(spread) > 0, spread  # both answered

        servers[0].process.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        out_after = proxy.wait_for("app1", "DOWN", within=30)
        # Draining: still serving, only its readiness says no.
        assert httpx.get(f"{servers[0].url}/items/", trust_env=False).status_code == 200
        assert httpx.get(f"{servers[0].url}{READY}", trust_env=False).status_code == 503
        before = [_served(server, "/items/") for server in servers]
        for _ in range(20):
            assert client.get("/items/").status_code == 200
        after = [_served(server, "/items/") for server in servers]
        assert after[0] - before[0] == 0  # the direct request above was counted before
        assert after[1] - before[1] == 20
        assert servers[0].process.poll() is None
        # A second SIGTERM ends the drain at once.
        servers[0].process.send_signal(signal.SIGTERM)
        servers[0].process.wait(timeout=GRACE + 30)
        stopped_after = time.monotonic() - signalled
    assert stopped_after < 60, stopped_after  # not the 120 s drain
    print(f"a draining process was out of HAProxy {out_after:.2f} s after SIGTERM")


class Load:
    """Clients writing (POST /items/, an Idempotency-Key each, retried with the same key
    after a failure) and reading (GET /items/ and GET /items/{id}) through HAProxy
    without pause, counting every failure they see."""

    def __init__(self, client: httpx.AsyncClient, headers: dict[str, str]) -> None:
        self.client = client
        self.headers = headers
        self.acknowledged: dict[str, int] = {}  # key -> the id of the item it created
        self.failures: list[str] = []  # each failed attempt, whatever it was
        self.retried = 0  # writes sent again after a failure
        self.reads = 0
        self.stop = asyncio.Event()

    async def write(self) -> None:
        while not self.stop.is_set():
            key = uuid.uuid4().hex
            headers = {**self.headers, "Idempotency-Key": key}
            while True:  # until this key's write is acknowledged
                try:
                    response = await self.client.post(
                        "/items/", json={"title": key}, headers=headers
                    )
                except httpx.TransportError as error:
                    self.failures.append(f"POST: {error!r}")
                else:
                    if response.status_code == 200:
                        self.acknowledged[key] = response.json()["id"]
                        break
                    self.failures.append(f"POST: {response.status_code} {response.text}")
                self.retried += 1
                await asyncio.sleep(0.1)

    async def read(self) -> None:
        while not self.stop.is_set():
            ids = list(self.acknowledged.values())
            path = f"/items/{ids[-1]}" if ids and self.reads % 2 else "/items/?limit=20"
            try:
                response = await self.client.get(path)
            except httpx.TransportError as error:
                self.failures.append(f"GET {path}: {error!r}")
            else:
                if response.status_code != 200:
                    self.failures.append(f"GET {path}: {response.status_code} {response.text}")
            self.reads += 1


async def test_a_rolling_restart_under_load_loses_no_request_and_no_write(
    database: Database, tmp_path: Path
) -> None:
    postgres_only(database)
    env = production_env(
        database.url,
        SHUTDOWN_DRAIN_SECONDS=str(DRAIN),
        GRACEFUL_SHUTDOWN_TIMEOUT=str(GRACE),
        ACCESS_LOG="false",
    )
    with _processes(env, tmp_path, 2) as servers, _in_front(servers, tmp_path) as proxy:
        limits = httpx.Limits(max_connections=16)
        async with httpx.AsyncClient(
            base_url=proxy.url, timeout=30, limits=limits, trust_env=False
        ) as client:
            owner = await new_account(client)
            load = Load(client, owner.headers)
            clients = [asyncio.create_task(load.write()) for _ in range(4)]
            clients += [asyncio.create_task(load.read()) for _ in range(4)]
            started = time.monotonic()
            written_during: list[int] = []
            try:
                await asyncio.sleep(1)
                for index, name in enumerate(server_names(len(servers))):
                    before = len(load.acknowledged)
                    old = servers[index]
                    old.process.send_signal(signal.SIGTERM)
                    status = await asyncio.to_thread(old.process.wait, DRAIN + GRACE + 30)
                    assert status == -signal.SIGTERM, old.output()
                    servers[index] = await asyncio.to_thread(
                        start_server, env, tmp_path, port=_port(old), ready_path=READY
                    )
                    await asyncio.to_thread(proxy.wait_for, name, "UP")
                    await asyncio.sleep(1)
                    written_during.append(len(load.acknowledged) - before)
            finally:
                load.stop.set()
                await asyncio.gather(*clients)
            took = time.monotonic() - started
        counters = proxy.backend()
    assert load.failures == [], load.failures[:10]
    assert load.retried == 0
    # Nor did HAProxy have to send any again: each process was out of its rotation before
    # it stopped listening. (Without the drain, the same restarts cost hundreds of
    # requests a failed connection each, which HAProxy then sent to the other process.)
    assert (counters["wretr"], counters["wredis"]) == ("0", "0"), counters
    assert all(written_during), written_during  # the clients wrote during every restart
    # Every acknowledged write is there, once; nothing else was written.
    rows = await database.column("SELECT title FROM items ORDER BY id")
    assert len(rows) == len(set(rows)) == len(load.acknowledged)
    assert set(rows) == set(load.acknowledged)
    ids = await database.column("SELECT id FROM items WHERE title = ANY(:titles)", titles=rows)
    assert sorted(ids) == sorted(load.acknowledged.values())
    print(
        f"rolling restart of 2 processes in {took:.1f} s under load: "
        f"{len(load.acknowledged)} writes and {load.reads} reads, 0 failed, 0 retried by the "
        f"clients; HAProxy retried {counters['wretr']} and redispatched {counters['wredis']}"
    )


def _trickle(address: tuple[str, int], head: bytes, every: float, within: float) -> Any:
    """Send `head` a byte at a time, `every` seconds apart, until the other side answers
    or closes; what it sent back, and after how many seconds it closed."""
    start = time.monotonic()
    received = b""
    with socket.create_connection(address) as sock:
        for byte in head:
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                break
            readable, _, _ = select.select([sock], [], [], every)
            if readable:
                break
        sock.settimeout(within)
        with contextlib.suppress(ConnectionResetError):
            while chunk := sock.recv(65536):
                received += chunk
    return received, time.monotonic() - start


def test_haproxy_drops_slow_and_oversized_heads_before_they_reach_the_app(
    database: Database, tmp_path: Path
) -> None:
    postgres_only(database)
    head_timeout = 1.0  # HAProxy's `timeout http-request` in this test (10 s in the file)
    # The app's own bound is far away: whatever answers in time is HAProxy.
    env = production_env(database.url, REQUEST_HEAD_TIMEOUT="120", ACCESS_LOG="false")
    overrides = {"timeout http-request": f"{head_timeout:g}s"}
    with (
        _processes(env, tmp_path, 1) as servers,
        _in_front(servers, tmp_path, overrides) as proxy,
        httpx.Client(base_url=proxy.url, timeout=30, trust_env=False) as client,
    ):
        (app,) = servers
        assert client.get("/items/").status_code == 200  # the way works

        host, port = proxy.url.removeprefix("http://").split(":")
        slow = b"GET /items/ HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 200 + b"\r\n\r\n"
        received, closed_after = _trickle((host, int(port)), slow, every=0.1, within=30)
        assert received.startswith(b"HTTP/1.1 408 "), received
        # Sending it all would take 22 s; HAProxy's timeout, not the app's, ended it.
        assert head_timeout <= closed_after < 10, closed_after

        # 20 KiB of headers: within the app's own limit (32 KiB), over HAProxy's (16 KiB).
        large = client.get("/items/", headers={"X-Pad": "a" * 20 * 1024})
        assert large.status_code == 431
        assert large.json() == {"detail": "Request head too large"}
        # Over HAProxy's buffer: refused by its parser.
        huge = client.get("/items/", headers={"X-Pad": "a" * 40 * 1024})
        assert huge.status_code == 400

        # None of them reached the app: it answered the one request, dropped nothing.
        assert _served(app, "/items/") == 1
        assert _dropped(app) == 0


def test_the_app_counts_failed_log_ins_by_the_address_haproxy_forwards(
    database: Database, tmp_path: Path
) -> None:
    # Log-in failures are counted per client address. HAProxy connects to the app from
    # 127.0.0.1 (trusted, TRUSTED_PROXIES' default) for every client; the clients here
    # connect to it from two other loopback addresses.
    postgres_only(database)
    env = production_env(database.url, LOGIN_MAX_FAILURES_PER_ADDRESS="2")
    with _processes(env, tmp_path, 1) as servers, _in_front(servers, tmp_path) as proxy:

        def failed_log_in(source: str, headers: dict[str, str] | None = None) -> int:
            transport = httpx.HTTPTransport(local_address=source)
            with httpx.Client(
                base_url=proxy.url, transport=transport, timeout=30, trust_env=False
            ) as client:
                wrong = {"username": unique_email(), "password": "not the password"}
                return client.post("/auth/token", data=wrong, headers=headers).status_code

        # One address runs out of failures, whatever X-Forwarded-For it sends itself...
        claims = [failed_log_in("127.0.0.2", {"X-Forwarded-For": f"10.0.0.{i}"}) for i in range(3)]
        # ...and the other is not held back by it.
        other = failed_log_in("127.0.0.3")
    assert claims == [401, 401, 429]
    assert other == 401
