"""/docs and /redoc render in a real browser, from this server alone.

The server runs as production runs it (`python -m app`, on a fresh migrated SQLite
database); headless Chromium, which may resolve no host name but 127.0.0.1, opens each
page. Every operation of the OpenAPI document must be rendered, and the console must stay
silent: no script error, nothing the Content-Security-Policy blocked.

Needs a headless Chromium: Debian's chromium-headless-shell (what `make chromium` installs:
`apt-get install -y --no-install-recommends chromium-headless-shell`) or chromium, found on
the PATH in that order, or CHROMIUM naming another Chrome or Chromium binary. Without one
these tests fail, unless SKIP_BROWSER_TESTS=1 says to skip them (CI never does). They are
marked `browser`: `pytest -m browser` runs them alone, `-m "not browser"` leaves them out.
"""

import contextlib
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.databases import PROJECT_ROOT, migrate
from tests.servers import free_port

pytestmark = pytest.mark.browser

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # Any host but the server is unknown: nothing can come from elsewhere.
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
    # The DOM is taken once 10 s of virtual time have passed (ReDoc renders only after
    # fetching the document); virtual time skips ahead while the page is idle.
    "--virtual-time-budget=10000",
    "--enable-logging=stderr",  # the console's messages, as lines with ":CONSOLE"
    "--v=0",
]
CHROMIUM_TIMEOUT = 120  # seconds: a page takes 3 to 10 on a busy machine
SERVER_START_TIMEOUT = 60
# Swagger UI's block for an operation: its method, its anchor (tag-operationId), its path.
SWAGGER_OPERATION = re.compile(
    r'<div class="opblock opblock-(\w+)[^"]*" id="operations-([^"]+)">.*?data-path="([^"]+)"',
    re.DOTALL,
)


# Debian's browser alone (no desktop, a fraction of the packages), then the full browser.
CHROMIUM_NAMES = ["chromium-headless-shell", "chromium"]


@pytest.fixture(scope="module")
def chromium() -> str:
    names = [os.environ["CHROMIUM"]] if os.environ.get("CHROMIUM") else CHROMIUM_NAMES
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    wanted = " or ".join(repr(name) for name in names)
    if os.environ.get("SKIP_BROWSER_TESTS") == "1":
        pytest.skip(f"SKIP_BROWSER_TESTS=1 and no {wanted}: the docs were not opened in a browser")
    pytest.fail(
        f"The docs are tested in headless Chromium, and {wanted} is not installed. Install it "
        "(`make chromium`; Debian: `apt-get install -y --no-install-recommends "
        "chromium-headless-shell`), or set CHROMIUM to a Chrome or Chromium binary, or set "
        "SKIP_BROWSER_TESTS=1 to skip the browser tests.",
        pytrace=False,
    )


@pytest.fixture(scope="module")
def server(chromium: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The base URL of the API served by `python -m app`, as production serves it."""
    tmp = tmp_path_factory.mktemp("server")
    database_url = f"sqlite+aiosqlite:///{tmp / 'app.db'}"
    migrate(database_url)
    port = free_port()
    env = os.environ | {
        "PYTHONPATH": str(PROJECT_ROOT),
        "DATABASE_URL": database_url,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "ENVIRONMENT": "production",
        "SECRET_KEY": secrets.token_urlsafe(48),
        "ACCESS_LOG": "false",
    }
    log = tmp / "server.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "app"],
            cwd=tmp,  # no .env there
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        with httpx.Client(base_url=base_url, trust_env=False, timeout=5) as client:
            while True:
                with contextlib.suppress(httpx.TransportError):
                    if client.get("/health").status_code == 200:
                        break
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"`python -m app` did not start:\n{log.read_text()}")
                time.sleep(0.1)
        yield base_url
    finally:
        process.terminate()  # uvicorn shuts down cleanly on SIGTERM
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def operations(server: str) -> list[dict[str, Any]]:
    """Every operation of the server's OpenAPI document, with its method and path."""
    spec = httpx.get(f"{server}/openapi.json", trust_env=False, timeout=10).json()
    found = [
        {**operation, "method": method, "path": path}
        for path, methods in spec["paths"].items()
        for method, operation in methods.items()
    ]
    assert len(found) >= 14, found
    return found


def render(chromium: str, url: str, profile: Path) -> tuple[str, list[str]]:
    """The page's DOM once its scripts are done, and what it wrote on the console."""
    command = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--dump-dom", url]
    # Chromium's renderer, GPU and zygote processes share its new process group: on a
    # timeout, and once it is done, the whole group goes.
    browser = subprocess.Popen(  # noqa: S603 - fixed command line
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        dom, log = browser.communicate(timeout=CHROMIUM_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(browser.pid, signal.SIGKILL)
        browser.communicate()
        pytest.fail(f"Chromium did not finish {url} within {CHROMIUM_TIMEOUT} s")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(browser.pid, signal.SIGKILL)
    # Chromium exits with 0 whatever happened to the page: the DOM and the console tell.
    assert dom.strip(), f"Chromium returned no page for {url} (exit {browser.returncode}):\n{log}"
    return dom, [line for line in log.splitlines() if ":CONSOLE" in line]


def test_swagger_ui_shows_every_operation_and_the_authorize_button(
    chromium: str, server: str, operations: list[dict[str, Any]], tmp_path: Path
) -> None:
    dom, console = render(chromium, f"{server}/docs", tmp_path)
    assert not console, "\n".join(console)
    assert "Failed to load API definition" not in dom
    shown = set(SWAGGER_OPERATION.findall(dom))
    expected = {
        (op["method"], f"{op['tags'][0]}-{op['operationId']}", op["path"]) for op in operations
    }
    assert shown == expected
    assert re.search(r'<button class="btn authorize[^"]*"', dom), "no Authorize button"


def test_redoc_shows_every_operation(
    chromium: str, server: str, operations: list[dict[str, Any]], tmp_path: Path
) -> None:
    dom, console = render(chromium, f"{server}/redoc", tmp_path)
    assert not console, "\n".join(console)
    assert re.search(r'class="[^"]*\bredoc-wrap\b', dom), "ReDoc did not render"
    shown = set(re.findall(r'data-section-id="operation/([^"]+)"', dom))
    assert shown == {op["operationId"] for op in operations}
    assert 'src="/redoc/logo-mini.svg"' in dom  # its logo too, from this server
