"""/docs and /redoc render in a real browser, from this server alone.

The server runs as production runs it (`python -m app`, on a fresh migrated SQLite
database); headless Chromium, which may resolve no host name but 127.0.0.1, opens each
page. Every operation of the OpenAPI document must be rendered, and the console must stay
silent: no script error, nothing the Content-Security-Policy blocked. The browser:
tests/browser.py.
"""

import contextlib
import os
import re
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.browser import find_chromium, render
from tests.databases import PROJECT_ROOT, migrate
from tests.servers import free_port

pytestmark = pytest.mark.browser

SERVER_START_TIMEOUT = 60
# Swagger UI's block for an operation: its method, its anchor (tag-operationId), its path.
SWAGGER_OPERATION = re.compile(
    r'<div class="opblock opblock-(\w+)[^"]*" id="operations-([^"]+)">.*?data-path="([^"]+)"',
    re.DOTALL,
)


@pytest.fixture(scope="module")
def chromium() -> str:
    return find_chromium()


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
