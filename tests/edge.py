"""HAProxy as deploy/haproxy.cfg configures it, in front of `app serve` processes on loopback:
for test_haproxy.py (and the compose test's check of the file).

The configuration the tests run is the repository's, section by section, with what only
Docker has replaced: the `resolvers` section (Docker's DNS) is dropped, the backend's
`server-template` becomes one `server` line per process of the test (the backend's
`default-server` line, with its checks and limits, applies to them as it would to the
replicas), the frontend binds a free port on 127.0.0.1, and a stats socket lets the test
see what HAProxy thinks of each server. A test may override single settings (a shorter
`timeout http-request`).

Needs HAProxy: `apt-get install -y haproxy` (Debian, Ubuntu: `make haproxy`, which `make
test` runs, does it when it is missing), or HAPROXY naming another binary. Without it the
tests fail, unless SKIP_HAPROXY_TESTS=1 says to skip them (CI never does).
"""

import contextlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.databases import PROJECT_ROOT
from tests.servers import START_TIMEOUT, free_port

HAPROXY_CONFIG = PROJECT_ROOT / "deploy" / "haproxy.cfg"
SECTIONS = ("global", "defaults", "frontend", "backend", "resolvers", "listen", "peers")


def haproxy_binary() -> str:
    name = os.environ.get("HAPROXY", "haproxy")
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin")
    if path:
        return path
    if os.environ.get("SKIP_HAPROXY_TESTS") == "1":
        pytest.skip(f"SKIP_HAPROXY_TESTS=1 and no {name}: the tests through HAProxy were not run")
    pytest.fail(
        f"These tests run HAProxy, and {name!r} is not installed. Install it (Debian, Ubuntu: "
        "`apt-get install -y haproxy`, which `make haproxy` and `make test` do), or set "
        "HAPROXY to an HAProxy binary, or set SKIP_HAPROXY_TESTS=1 to skip these tests.",
        pytrace=False,
    )


@dataclass
class Section:
    header: str  # e.g. "backend api"
    lines: list[str]  # its settings, comments and blank lines dropped

    @property
    def kind(self) -> str:
        return self.header.split()[0]


def sections(text: str) -> list[Section]:
    """The configuration's sections, in order."""
    found: list[Section] = []
    for raw in text.splitlines():
        line = raw.split(" #", 1)[0].rstrip() if not raw.lstrip().startswith("#") else ""
        if not line.strip():
            continue
        if not raw[0].isspace():
            assert line.split()[0] in SECTIONS, f"not a section: {line}"
            found.append(Section(line.strip(), []))
        else:
            assert found, f"a setting before any section: {line}"
            found[-1].lines.append(line.strip())
    return found


def section_of(found: list[Section], kind: str) -> Section:
    (section,) = [s for s in found if s.kind == kind]
    return section


def setting(section: Section, name: str) -> str:
    """The value of the one line of `section` starting with `name`."""
    (line,) = [line for line in section.lines if line == name or line.startswith(name + " ")]
    return line.removeprefix(name).strip()


def config_for_test(
    listen: int, servers: list[int], stats_socket: Path, overrides: dict[str, str] | None = None
) -> str:
    """deploy/haproxy.cfg as the test runs it (see the module's docstring)."""
    found = sections(HAPROXY_CONFIG.read_text())
    section_of(found, "resolvers")  # the one that goes
    out: list[str] = []
    for section in found:
        if section.kind == "resolvers":
            continue
        lines = list(section.lines)
        if section.kind == "global":
            lines.append(f"stats socket {stats_socket} level admin")
        if section.kind == "frontend":
            (bind,) = [i for i, line in enumerate(lines) if line.startswith("bind ")]
            lines[bind] = f"bind 127.0.0.1:{listen}"
        if section.kind == "backend":
            (template,) = [i for i, line in enumerate(lines) if line.startswith("server-template ")]
            assert "resolvers docker" in lines[template]
            lines[template : template + 1] = [
                f"server app{index} 127.0.0.1:{port}" for index, port in enumerate(servers, 1)
            ]
        for name, value in (overrides or {}).items():
            lines = [f"{name} {value}" if line.startswith(name + " ") else line for line in lines]
        out += [section.header, *(f"    {line}" for line in lines), ""]
    return "\n".join(out)


def check_config(path: Path) -> subprocess.CompletedProcess[str]:
    """`haproxy -c -f PATH`: whether HAProxy accepts the file."""
    return subprocess.run(  # noqa: S603 - the binary found above, on a file of the repository
        [haproxy_binary(), "-c", "-f", str(path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


@dataclass
class HAProxy:
    process: subprocess.Popen[bytes]
    url: str
    stats_socket: Path
    log: Path

    def output(self) -> str:
        return self.log.read_text()

    def stats(self) -> list[dict[str, str]]:
        """HAProxy's `show stat`: a row for each frontend, backend and server."""
        with socket.socket(socket.AF_UNIX) as admin:
            admin.settimeout(10)
            admin.connect(str(self.stats_socket))
            admin.sendall(b"show stat\n")
            received = b""
            while chunk := admin.recv(65536):
                received += chunk
        lines = received.decode().splitlines()
        columns = lines[0].lstrip("# ").split(",")
        return [dict(zip(columns, line.split(","), strict=False)) for line in lines[1:] if line]

    def status(self) -> dict[str, str]:
        """Each server's state as HAProxy sees it: UP, DOWN, "UP 1/2" (going down), ..."""
        return {
            row["svname"]: row["status"]
            for row in self.stats()
            if row["pxname"] == "api" and row["svname"] not in ("FRONTEND", "BACKEND")
        }

    def backend(self) -> dict[str, str]:
        """The backend's counters: `wretr` requests retried, `wredis` redispatched, ..."""
        (row,) = [r for r in self.stats() if (r["pxname"], r["svname"]) == ("api", "BACKEND")]
        return row

    def wait_for(self, server: str, status: str, within: float = START_TIMEOUT) -> float:
        """Seconds until HAProxy sees `server` in `status` (UP, DOWN)."""
        start = time.monotonic()
        while (now := self.status().get(server)) != status:
            assert time.monotonic() - start < within, f"{server} is {now}, not {status}"
            time.sleep(0.05)
        return time.monotonic() - start


@contextlib.contextmanager
def haproxy(
    servers: list[int], tmp: Path, overrides: dict[str, str] | None = None
) -> Iterator[HAProxy]:
    """HAProxy on a free port in front of `app serve` processes on `servers` (ports)."""
    binary = haproxy_binary()
    listen = free_port()
    stats_socket = tmp / "haproxy.sock"
    config = tmp / "haproxy.cfg"
    config.write_text(config_for_test(listen, servers, stats_socket, overrides))
    log = tmp / "haproxy.log"
    with log.open("wb") as output:
        process = subprocess.Popen(  # noqa: S603 - fixed command line
            [binary, "-db", "-f", str(config)], cwd=tmp, stdout=output, stderr=subprocess.STDOUT
        )
    proxy = HAProxy(process, f"http://127.0.0.1:{listen}", stats_socket, log)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not stats_socket.exists() or not _accepts(listen):
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"HAProxy did not start:\n{proxy.output()}")
            time.sleep(0.05)
        yield proxy
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _accepts(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        return True
    return False


def server_names(count: int) -> list[str]:
    """The names config_for_test gives the servers."""
    return [f"app{index}" for index in range(1, count + 1)]
