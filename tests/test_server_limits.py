"""What one client can hold of `app serve`: the size of a request head, the time to send
it, idle connections, the number of connections; a worker killed under load.

Real sockets against the server as production runs it (tests/servers.py).
"""

import contextlib
import json
import os
import signal
import socket
import statistics
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.databases import migrate
from tests.helpers import PASSWORD, unique_email
from tests.servers import Server, production_env, serving

HEAD_LIMIT = 32 * 1024  # MAX_REQUEST_HEAD_SIZE's default


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'app.db'}"
    migrate(url)
    return url


def _address(server: Server) -> tuple[str, int]:
    host, port = server.url.removeprefix("http://").split(":")
    return host, int(port)


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def _latency(client: httpx.Client) -> float:
    start = time.monotonic()
    assert client.get("/health/live").status_code == 200
    return time.monotonic() - start


def _until_closed(sock: socket.socket, *, within: float) -> tuple[bytes, float]:
    """What the server sent until it closed the connection, and when it closed it
    (seconds since the call); fails if it is still open after `within` seconds."""
    sock.settimeout(within)
    start = time.monotonic()
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except TimeoutError:
        raise AssertionError(f"still open after {within} s; received {received[:80]!r}") from None
    except ConnectionResetError:
        pass
    return received, time.monotonic() - start


def test_an_oversized_request_head_is_refused_at_once_without_stalling_others(
    database_url: str, tmp_path: Path
) -> None:
    with serving(production_env(database_url), tmp_path) as server:
        pid = server.process.pid
        with httpx.Client(base_url=server.url, timeout=30) as client:
            usual = statistics.median(_latency(client) for _ in range(20))
            rss_before = _rss_kib(pid)
            sent = 0
            answer = b""
            latencies: list[float] = []
            done = threading.Event()

            def huge_header() -> None:
                nonlocal sent, answer
                with socket.create_connection(_address(server)) as sock:
                    sock.sendall(b"GET /health/live HTTP/1.1\r\nHost: x\r\nX-Huge: ")
                    chunk = b"a" * 65536
                    with contextlib.suppress(OSError):
                        while sent < 64 * 1024 * 1024:
                            sock.sendall(chunk)
                            sent += len(chunk)
                    with contextlib.suppress(OSError):
                        answer = sock.recv(200)
                done.set()

            sender = threading.Thread(target=huge_header)
            sender.start()
            while not done.is_set():
                latencies.append(_latency(client))
            sender.join()
            rss_after = _rss_kib(pid)
    # Refused once a little over the limit had arrived (what the kernel buffers between
    # the two sockets aside), not after reading all 64 MiB.
    assert sent < 16 * 1024 * 1024, sent
    assert answer == b"" or answer.startswith(b"HTTP/1.1 431 "), answer
    # Nobody else waited for it, and it cost the process nothing it keeps.
    assert max(latencies) < max(1.0, 20 * usual), (max(latencies), usual)
    assert rss_after - rss_before < 8 * 1024, (rss_before, rss_after)


def test_a_request_head_over_the_limit_is_431_under_it_served(
    database_url: str, tmp_path: Path
) -> None:
    env = production_env(database_url)
    with serving(env, tmp_path) as server, httpx.Client(base_url=server.url, timeout=30) as client:
        fits = client.get("/health/live", headers={"X-Pad": "a" * (HEAD_LIMIT - 200)})
        assert fits.status_code == 200
        over = client.get("/health/live", headers={"X-Pad": "a" * HEAD_LIMIT})
        assert over.status_code == 431
        # Headers and a body in one write: the body does not count towards the head.
        body = client.post("/users/", json={"email": unique_email(), "password": "x" * 90_000})
        assert body.status_code == 413  # the body limit's answer, not the head's


def test_clients_that_send_their_head_slowly_or_not_at_all_are_dropped(
    database_url: str, tmp_path: Path
) -> None:
    timeout = 2.0
    env = production_env(database_url, REQUEST_HEAD_TIMEOUT=str(timeout))
    with serving(env, tmp_path) as server:
        silent = socket.create_connection(_address(server))
        slow = socket.create_connection(_address(server))
        stop = threading.Event()

        def trickle() -> None:  # a byte every 0.2 s: more than any idle timeout allows
            with contextlib.suppress(OSError):
                for byte in b"GET /health/live HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 1000:
                    if stop.wait(0.2):
                        return
                    slow.send(bytes([byte]))

        trickler = threading.Thread(target=trickle)
        trickler.start()
        try:
            with silent, slow:
                nothing, silent_for = _until_closed(silent, within=timeout * 10)
                answer, slow_for = _until_closed(slow, within=timeout * 10)
        finally:
            stop.set()
            trickler.join()
        with httpx.Client(base_url=server.url) as client:  # and others are served
            assert client.get("/health/live").status_code == 200
    assert nothing == b""
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    # Dropped by the timeout: not before it, and long before the trickle would end.
    assert timeout * 0.9 <= silent_for < timeout * 10
    assert slow_for < timeout * 10


def test_an_idle_keep_alive_connection_is_closed(database_url: str, tmp_path: Path) -> None:
    env = production_env(database_url, KEEP_ALIVE_TIMEOUT="1", REQUEST_HEAD_TIMEOUT="30")
    with serving(env, tmp_path) as server, socket.create_connection(_address(server)) as sock:
        sock.sendall(b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n")
        received, closed_after = _until_closed(sock, within=20)
    assert received.startswith(b"HTTP/1.1 200 ")
    assert 0.8 <= closed_after < 4  # KEEP_ALIVE_TIMEOUT, not the default 5 s


def test_past_max_connections_new_ones_get_503_and_the_server_recovers(
    database_url: str, tmp_path: Path
) -> None:
    env = production_env(
        database_url, MAX_CONNECTIONS="20", REQUEST_HEAD_TIMEOUT="60", LOG_FORMAT="json"
    )
    with serving(env, tmp_path) as server:
        held = [socket.create_connection(_address(server)) for _ in range(20)]
        try:
            with socket.create_connection(_address(server)) as one_more:
                one_more.sendall(b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n")
                refused, _ = _until_closed(one_more, within=30)
        finally:
            for sock in held:
                sock.close()
        head, _, body = refused.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 503 "), refused
        assert b"retry-after: 1" in head.lower()
        assert json.loads(body) == {"detail": "Too many connections, retry later"}

        def counted() -> str:
            with httpx.Client(base_url=server.url) as client:
                return client.get("/metrics").text  # served again: the held ones are gone

        deadline = time.monotonic() + 30
        dropped = 'http_connections_dropped_total{reason="too many connections"} 1.0'
        while dropped not in (metrics := counted()):
            assert time.monotonic() < deadline, metrics
            time.sleep(0.2)
        # Among the 503s too, with their reason.
        assert 'http_unavailable_total{reason="too many connections"} 1.0' in metrics
        server.stop()
    warnings = [
        json.loads(line)
        for line in server.output().splitlines()
        if line.startswith("{") and "connections refused" in line
    ]
    assert [w["level"] for w in warnings] == ["warning"], warnings
    assert "1 too many connections" in warnings[0]["event"]


def test_only_a_trusted_proxy_says_who_the_client_is(database_url: str, tmp_path: Path) -> None:
    # Log-in failures are counted per client address: behind a trusted proxy, that is
    # the address it forwards; from anyone else, the connection's own.
    def fourth_failure_from_another_address(trusted_proxies: str) -> int:
        env = production_env(
            database_url, LOGIN_MAX_FAILURES_PER_ADDRESS="3", TRUSTED_PROXIES=trusted_proxies
        )
        with serving(env, tmp_path) as server, httpx.Client(base_url=server.url) as client:
            for forwarded_for in ("10.0.0.1", "10.0.0.1", "10.0.0.1", "10.0.0.2"):
                response = client.post(
                    "/auth/token",
                    data={"username": unique_email(), "password": PASSWORD},
                    headers={"X-Forwarded-For": forwarded_for},
                )
            return response.status_code

    assert fourth_failure_from_another_address("127.0.0.1") == 401
    assert fourth_failure_from_another_address("10.9.9.9") == 429
    assert fourth_failure_from_another_address("") == 429


def _workers(supervisor: int) -> set[int]:
    children = Path(f"/proc/{supervisor}/task/{supervisor}/children").read_text().split()
    return {
        int(child)
        for child in children
        if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes()
    }


@contextlib.contextmanager
def _load(url: str, connections: int) -> Iterator[list[int]]:
    """Requests from `connections` threads, each on new connections, until the block
    ends; yields the list their statuses are appended to."""
    statuses: list[int] = []
    stop = threading.Event()

    def requests() -> None:
        with httpx.Client(base_url=url, timeout=30) as client:
            while not stop.is_set():
                with contextlib.suppress(httpx.TransportError):
                    statuses.append(
                        client.get("/users/1", headers={"Connection": "close"}).status_code
                    )

    threads = [threading.Thread(target=requests) for _ in range(connections)]
    for thread in threads:
        thread.start()
    try:
        yield statuses
    finally:
        stop.set()
        for thread in threads:
            thread.join()


def _gauge(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"no {name} in /metrics")


def test_a_worker_killed_under_load_is_replaced_and_the_replacement_stays(
    database_url: str, tmp_path: Path
) -> None:
    env = production_env(database_url, LOG_FORMAT="json", ACCESS_LOG="false")
    with serving(env, tmp_path, "--workers", "2") as server:
        supervisor = server.process.pid
        deadline = time.monotonic() + 60
        while len(workers := _workers(supervisor)) < 2:
            assert time.monotonic() < deadline, "two workers did not start"
            time.sleep(0.2)
        with _load(server.url, 8) as statuses:
            time.sleep(1)
            killed = min(workers)
            os.kill(killed, signal.SIGKILL)
            start = time.monotonic()
            while len(replacement := _workers(supervisor) - workers) < 1:
                assert time.monotonic() - start < 60, "the worker was not replaced"
                time.sleep(0.1)
            (new,) = replacement
            # It serves: the pool gauges of the two live workers add up, the dead one's
            # are gone (every worker keeps DB_POOL_SIZE=10).
            with httpx.Client(base_url=server.url) as client:
                while _gauge(client.get("/metrics").text, "db_pool_size") != 20:
                    assert time.monotonic() - start < 60, client.get("/metrics").text
                    time.sleep(0.5)
            replaced_after = time.monotonic() - start
            time.sleep(15)  # under load still, the supervisor's checks run on
            assert _workers(supervisor) == workers - {killed} | {new}
            served = len(statuses)
        assert served > 0
        assert set(statuses) == {404}
    print(f"worker replaced and serving {replaced_after:.1f} s after SIGKILL")
