"""The service as production runs it: `app serve` in a process of its own, and its other verbs."""

import asyncio
import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.databases import PROJECT_ROOT

START_TIMEOUT = 60  # seconds: starting takes 1 to 10 on a busy machine
APP = str(Path(sys.executable).parent / "app")  # the console script the project installs


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_for_port(port: int, within: float = START_TIMEOUT) -> None:
    """Until something accepts connections on 127.0.0.1:`port`."""
    deadline = time.monotonic() + within
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            assert time.monotonic() < deadline, f"nothing listens on port {port}"
            time.sleep(0.05)


def production_env(database_url: str, **overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    return env | {
        "PYTHONPATH": str(PROJECT_ROOT),
        "DATABASE_URL": database_url,
        "ENVIRONMENT": "production",
        "SECRET_KEY": secrets.token_urlsafe(48),
        # Cheap hashing: these tests are about the server, not about argon2's cost.
        "PASSWORD_HASH_TIME_COST": "1",
        "PASSWORD_HASH_MEMORY_COST": "8",
        **overrides,
    }


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def output(self) -> str:
        return self.log.read_text()

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM, as an orchestrator stops it; its exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise


def start_server(
    env: dict[str, str],
    tmp: Path,
    *args: str,
    port: int | None = None,
    ready_path: str = "/health/live",
) -> Server:
    """`app serve ARGS` on `port` (default: a free one), once `ready_path` answers 200."""
    port = port or free_port()
    log = tmp / f"server-{port}.log"
    with log.open("ab") as output:  # a server restarted on its port logs after its forerunner
        process = subprocess.Popen(  # noqa: S603 - fixed command line
            [APP, "serve", "--host", "127.0.0.1", "--port", str(port), *args],
            cwd=tmp,  # no .env there
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    server = Server(process, f"http://127.0.0.1:{port}", log)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        with httpx.Client(base_url=server.url, trust_env=False, timeout=5) as client:
            while True:
                with contextlib.suppress(httpx.TransportError):
                    if client.get(ready_path).status_code == 200:
                        break
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"`app serve` did not start:\n{server.output()}")
                time.sleep(0.1)
    except BaseException:
        if process.poll() is None:
            server.stop()
        raise
    return server


@contextlib.contextmanager
def serving(
    env: dict[str, str], tmp: Path, *args: str, ready_path: str = "/health/live"
) -> Iterator[Server]:
    """`app serve ARGS` on a free port, until the block ends (then SIGTERM)."""
    server = start_server(env, tmp, *args, ready_path=ready_path)
    try:
        yield server
    finally:
        if server.process.poll() is None:
            server.stop()


@dataclass
class Finished:
    """What a command printed, and how it exited."""

    status: int
    out: str
    err: str


async def app_command(env: dict[str, str], *args: str, stdin: bytes = b"") -> Finished:
    """`app ARGS` (the console script an operator runs), to its end."""
    process = await asyncio.create_subprocess_exec(
        APP,
        *args,
        cwd=PROJECT_ROOT,
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(stdin), timeout=START_TIMEOUT)
    assert process.returncode is not None
    return Finished(process.returncode, out.decode(), err.decode())


async def concurrent_gets(url: str, path: str, count: int) -> list[int]:
    """`count` GETs of `path` at once, each on a new connection; their statuses. (The
    client waits long: a busy machine may take seconds to answer them all.)"""
    limits = httpx.Limits(max_connections=count, max_keepalive_connections=0)
    async with httpx.AsyncClient(
        base_url=url, limits=limits, timeout=60, trust_env=False
    ) as client:
        responses = await asyncio.gather(*(client.get(path) for _ in range(count)))
    return [response.status_code for response in responses]
