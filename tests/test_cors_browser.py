"""A web page on another origin calls the API from a real browser (headless Chromium).

`app serve` runs with CORS_ORIGINS naming one origin: a small page server on another
port. The page signs up, logs in, creates an item with an Idempotency-Key (twice: one
item, the second answer a replay), changes it with its ETag in If-Match (200) and with
the stale one (412), reads a page with its Link, and deletes the item, all with `fetch`,
reading the headers the API exposes. The same page served from a port not listed is
refused by the browser, and nothing it asked for is done. The browser: tests/browser.py.
"""

import html
import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.browser import find_chromium, render
from tests.databases import migrate
from tests.servers import Server, production_env, serving

pytestmark = pytest.mark.browser

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Items</title></head>
<body><pre id="steps">running</pre>
<script>
const api = __API__;
const email = __EMAIL__;
const password = "a browser's own password";
const steps = [];

async function call(name, path, init) {
  let response;
  try {
    response = await fetch(api + path, init);
  } catch (error) {
    steps.push({name, error: String(error)});
    throw error;
  }
  const headers = {};
  for (const header of ["etag", "idempotent-replayed", "link", "x-request-id"]) {
    if (response.headers.get(header) !== null) headers[header] = response.headers.get(header);
  }
  const body = response.status === 204 ? null : await response.json();
  steps.push({name, status: response.status, headers, body});
  return {status: response.status, headers, body};
}

async function run() {
  const json = {"Content-Type": "application/json"};
  await call("sign up", "/users/", {
    method: "POST", headers: json, body: JSON.stringify({email, password}),
  });
  const token = await call("log in", "/auth/token", {
    method: "POST", body: new URLSearchParams({username: email, password}),
  });
  const auth = {"Authorization": "Bearer " + token.body.access_token};
  const create = (key, title) => ({
    method: "POST",
    headers: {...auth, ...json, "Idempotency-Key": key},
    body: JSON.stringify({title}),
  });
  const lamp = await call("create", "/items/", create("key-1", "Lamp"));
  await call("create, retried", "/items/", create("key-1", "Lamp"));
  const change = (title, etag) => ({
    method: "PATCH", headers: {...auth, ...json, "If-Match": etag}, body: JSON.stringify({title}),
  });
  const item = "/items/" + lamp.body.id;
  const changed = await call("change", item, change("Brass lamp", lamp.headers.etag));
  await call("change, stale", item, change("Tin lamp", lamp.headers.etag));
  await call("create another", "/items/", create("key-2", "Rug"));
  await call("list", "/items/?limit=1", {});
  await call("delete", item, {
    method: "DELETE", headers: {...auth, "If-Match": changed.headers.etag},
  });
}

run().catch(() => {}).finally(() => {
  document.getElementById("steps").textContent = JSON.stringify(steps);
});
</script></body></html>
"""


class PageServer(ThreadingHTTPServer):
    """Serves one page at every path, as a web front end's own server would."""

    def __init__(self, page: str) -> None:
        self.page = page.encode()
        super().__init__(("127.0.0.1", 0), PageHandler)

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class PageHandler(BaseHTTPRequestHandler):
    server: PageServer

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(self.server.page)))
        self.end_headers()
        self.wfile.write(self.server.page)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def page_for(api: str, email: str) -> str:
    return PAGE.replace("__API__", json.dumps(api)).replace("__EMAIL__", json.dumps(email))


@pytest.fixture
def page_servers() -> Iterator[tuple[PageServer, PageServer]]:
    """Two page servers, each on a port of its own: two origins."""
    servers = (PageServer(""), PageServer(""))
    threads = [threading.Thread(target=server.serve_forever, daemon=True) for server in servers]
    for thread in threads:
        thread.start()
    try:
        yield servers
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()


@pytest.fixture
def api(page_servers: tuple[PageServer, PageServer], tmp_path: Path) -> Iterator[Server]:
    """`app serve`, allowing the first page server's origin alone."""
    allowed, _ = page_servers
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'app.db'}"
    migrate(database_url)
    env = production_env(database_url, CORS_ORIGINS=allowed.origin, ACCESS_LOG="false")
    with serving(env, tmp_path) as server:
        yield server


def open_page(
    server: PageServer, api: Server, email: str, tmp_path: Path
) -> tuple[list[dict[str, Any]], list[str]]:
    """What the page served by `server` did with the API, and what it wrote on the console."""
    server.page = page_for(api.url, email).encode()
    dom, console = render(find_chromium(), f"{server.origin}/", tmp_path / "profile")
    return steps_of(dom), console


def steps_of(dom: str) -> list[dict[str, Any]]:
    found = re.search(r'<pre id="steps">(.*?)</pre>', dom, re.DOTALL)
    assert found, dom
    text = html.unescape(found.group(1))
    assert text != "running", "the page's script did not finish"
    steps: list[dict[str, Any]] = json.loads(text)
    return steps


def emails(api: Server) -> set[str]:
    users = httpx.get(f"{api.url}/users/", trust_env=False, timeout=10).json()
    return {user["email"] for user in users}


def test_a_page_on_a_listed_origin_uses_the_api(
    page_servers: tuple[PageServer, PageServer], api: Server, tmp_path: Path
) -> None:
    allowed, _ = page_servers
    done, console = open_page(allowed, api, "allowed@example.com", tmp_path)
    assert not console, "\n".join(console)

    steps = {step["name"]: step for step in done}
    statuses = {name: step.get("status", step.get("error")) for name, step in steps.items()}
    assert statuses == {
        "sign up": 200,
        "log in": 200,
        "create": 200,
        "create, retried": 200,
        "change": 200,
        "change, stale": 412,
        "create another": 200,
        "list": 200,
        "delete": 204,
    }
    lamp = steps["create"]["body"]
    assert steps["create"]["headers"]["etag"] == '"1"'
    assert steps["create, retried"]["body"] == lamp
    assert steps["create, retried"]["headers"]["idempotent-replayed"] == "true"
    assert steps["change"]["headers"]["etag"] == '"2"'
    assert steps["list"]["body"] == [steps["change"]["body"]]
    assert steps["list"]["headers"]["link"] == f'</items/?limit=1&after={lamp["id"]}>; rel="next"'
    assert all(step["headers"]["x-request-id"] for step in steps.values())

    # What the page did is done: the account, and the other item alone left.
    rug = steps["create another"]["body"]
    assert "allowed@example.com" in emails(api)
    assert httpx.get(f"{api.url}/items/", trust_env=False).json() == [rug]


def test_the_same_page_on_an_origin_not_listed_is_refused(
    page_servers: tuple[PageServer, PageServer], api: Server, tmp_path: Path
) -> None:
    _, elsewhere = page_servers
    done, console = open_page(elsewhere, api, "elsewhere@example.com", tmp_path)

    assert done == [{"name": "sign up", "error": "TypeError: Failed to fetch"}]
    assert any("blocked by CORS policy" in line for line in console), console
    assert "elsewhere@example.com" not in emails(api)  # the preflight failed: no sign-up sent
