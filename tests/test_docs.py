"""/docs and /redoc load everything from this server: no CDN, no fonts, no favicon from elsewhere.

tests/test_docs_browser.py renders them in Chromium; these tests read what the server sends.
"""

import base64
import hashlib
import re
from html.parser import HTMLParser

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient

# Each page, and the kinds of things it loads.
LOADS = {
    "/docs": {"script", "stylesheet", "icon", "spec"},
    "/redoc": {"script", "icon", "spec"},
    "/docs/oauth2-redirect": set(),
}
PAGES = list(LOADS)
# What a page refers to, by the kind of reference: the content type it must be served with.
CONTENT_TYPES = {
    "script": ("text/javascript", "application/javascript"),
    "stylesheet": ("text/css",),
    "icon": ("image/png",),
    "spec": ("application/json",),
}
INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


class References(HTMLParser):
    """The URLs a page loads, each with what it is."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "script" and attributes.get("src"):
            self.found.append(("script", attributes["src"] or ""))
        elif tag == "link":
            kind = "stylesheet" if attributes.get("rel") == "stylesheet" else "icon"
            self.found.append((kind, attributes.get("href") or ""))
        elif tag == "redoc":
            self.found.append(("spec", attributes.get("spec-url") or ""))
        else:
            for name in ("src", "href"):
                assert name not in attributes, (tag, attributes)


def references(html: str) -> list[tuple[str, str]]:
    parser = References()
    parser.feed(html)
    # Swagger UI is handed its URLs in the inline script.
    parser.found += [("spec", url) for url in re.findall(r"\burl: '([^']*)'", html)]
    return parser.found


async def page(client: AsyncClient, path: str) -> str:
    response = await client.get(path)
    assert response.status_code == 200, path
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    return response.text


@pytest.mark.parametrize("path", PAGES)
async def test_the_docs_name_no_other_server(client: AsyncClient, path: str) -> None:
    html = await page(client, path)
    assert "://" not in html  # no http(s), ws(s)... URL at all
    assert not re.search(r"""["'(]//""", html)  # nor a scheme-relative one
    for kind, url in references(html):
        assert url.startswith("/"), (kind, url)
        assert not url.startswith("//"), (kind, url)


@pytest.mark.parametrize("path", PAGES)
async def test_what_the_docs_load_is_served(client: AsyncClient, path: str) -> None:
    found = references(await page(client, path))
    assert {kind for kind, _ in found} == LOADS[path]
    for kind, url in found:
        response = await client.get(url)
        assert response.status_code == 200, url
        media_type = response.headers["content-type"].split(";")[0]
        assert media_type in CONTENT_TYPES[kind], (url, media_type)
        assert response.content, url


async def test_swagger_ui_logs_in_through_the_redirect_page_of_this_server(
    client: AsyncClient,
) -> None:
    html = await page(client, "/docs")
    assert "oauth2RedirectUrl: window.location.origin + '/docs/oauth2-redirect'" in html
    assert "swaggerUIRedirectOauth2" in await page(client, "/docs/oauth2-redirect")


async def test_redoc_shows_its_logo_from_this_server(client: AsyncClient) -> None:
    bundle = (await client.get("/docs/assets/redoc/redoc.standalone.js")).text
    assert "cdn.redoc.ly" not in bundle
    assert 'src:window.location.pathname+"/logo-mini.svg"' in bundle  # /redoc/logo-mini.svg
    logo = await client.get("/redoc/logo-mini.svg")
    assert logo.status_code == 200
    assert logo.headers["content-type"] == "image/svg+xml"


async def test_the_licences_of_the_docs_assets_are_served_with_them(client: AsyncClient) -> None:
    for path, words in [
        ("/docs/assets/swagger/LICENSE", "Apache License"),
        ("/docs/assets/redoc/redoc.standalone.js.LICENSE.txt", "ReDoc"),
        ("/docs/assets/fastapi/LICENSE", "MIT License"),
    ]:
        response = await client.get(path)
        assert response.status_code == 200, path
        assert words in response.text, path


@pytest.mark.parametrize("path", PAGES)
async def test_the_docs_pages_may_load_from_this_server_only(
    client: AsyncClient, path: str
) -> None:
    response = await client.get(path)
    policy = dict(
        directive.strip().split(" ", 1)
        for directive in response.headers["content-security-policy"].split(";")
    )
    assert policy["default-src"] == "'self'"
    assert "://" not in response.headers["content-security-policy"]
    # Inline scripts run only if they are the page's own, named by their hashes.
    digests = (hashlib.sha256(s.encode()).digest() for s in INLINE_SCRIPT.findall(response.text))
    hashes = {f"'sha256-{base64.b64encode(digest).decode()}'" for digest in digests}
    assert set(policy["script-src"].split()) == {"'self'", *hashes}
    assert "'unsafe-inline'" not in policy["script-src"]
    assert "'unsafe-eval'" not in response.headers["content-security-policy"]
    assert policy["object-src"] == "'none'"
    assert policy["base-uri"] == "'none'"


async def test_the_docs_follow_the_root_path_they_are_served_under(app: FastAPI) -> None:
    # Behind a proxy that serves the API under a prefix (uvicorn --root-path /api).
    transport = ASGITransport(app=app, root_path="/api")
    async with AsyncClient(transport=transport, base_url="http://test") as client:
        for path in ("/docs", "/redoc"):
            found = references(await page(client, f"/api{path}"))
            assert found, path
            for kind, url in found:
                assert url.startswith("/api/"), (kind, url)
                assert (await client.get(url)).status_code == 200, url
        assert "window.location.origin + '/api/docs/oauth2-redirect'" in await page(
            client, "/api/docs"
        )
