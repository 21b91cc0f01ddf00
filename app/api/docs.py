"""The interactive documentation, served by this server alone.

`/docs` (Swagger UI, whose Authorize button logs in with the password flow) and `/redoc`
(ReDoc) load their scripts, styles and icons from the files of the fastapi-standalone-docs
package, pinned in pyproject.toml and read where it is installed: no CDN, no web fonts,
nothing fetched from anywhere else. A Content-Security-Policy on the pages keeps it so.

The package's static directory is served under /docs/assets as it is installed (swagger/,
redoc/ and fastapi/ for the favicon, each with its upstream licence). Its ReDoc bundle asks
for its logo at the page's path plus `/logo-mini.svg`: /redoc/logo-mini.svg serves it.
"""

import base64
import hashlib
import re
from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS_PACKAGE = "fastapi_standalone_docs"
DOCS_URL = "/docs"
OAUTH2_REDIRECT_URL = "/docs/oauth2-redirect"
REDOC_URL = "/redoc"
ASSETS_URL = "/docs/assets"
REDOC_LOGO_URL = "/redoc/logo-mini.svg"

INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def assets_directory() -> Path:
    """The installed package's static directory, as a path StaticFiles can serve."""
    directory = files(ASSETS_PACKAGE) / "static"
    if not isinstance(directory, Path) or not directory.is_dir():
        raise RuntimeError(f"{ASSETS_PACKAGE} is not installed as files on disk")
    return directory


def script_hash(script: str) -> str:
    digest = hashlib.sha256(script.encode()).digest()
    return f"'sha256-{base64.b64encode(digest).decode()}'"


def content_security_policy(html: str) -> str:
    """Everything from this server only; the page's own inline scripts by their hashes.

    Styles may be inline: Swagger UI sets style attributes, and ReDoc writes its styles
    into <style> elements at run time. Images may be data: URLs (Swagger UI's icons).
    ReDoc's search runs in a worker it starts from a blob: URL.
    """
    hashes = " ".join(script_hash(script) for script in INLINE_SCRIPT.findall(html))
    return "; ".join(
        [
            "default-src 'self'",
            f"script-src 'self' {hashes}".rstrip(),
            "style-src 'self' 'unsafe-inline'",
            "img-src 'self' data:",
            "worker-src 'self' blob:",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'self'",
        ]
    )


def confined(page: HTMLResponse) -> HTMLResponse:
    page.headers["Content-Security-Policy"] = content_security_policy(bytes(page.body).decode())
    return page


def install_docs(app: FastAPI) -> None:
    """Add /docs, its OAuth2 redirect page and /redoc to an app made with docs_url=None
    and redoc_url=None, with the assets they load."""
    openapi_url = app.openapi_url
    if openapi_url is None:
        raise ValueError("the docs need the OpenAPI document")

    assets = assets_directory()

    def root(request: Request) -> str:
        root_path: str = request.scope.get("root_path", "")
        return root_path.rstrip("/")

    async def swagger_ui(request: Request) -> HTMLResponse:
        prefix = root(request)
        return confined(
            get_swagger_ui_html(
                openapi_url=prefix + openapi_url,
                title=f"{app.title} - Swagger UI",
                swagger_js_url=f"{prefix}{ASSETS_URL}/swagger/swagger-ui-bundle.js",
                swagger_css_url=f"{prefix}{ASSETS_URL}/swagger/swagger-ui.css",
                swagger_favicon_url=f"{prefix}{ASSETS_URL}/fastapi/favicon.png",
                oauth2_redirect_url=prefix + OAUTH2_REDIRECT_URL,
                init_oauth=app.swagger_ui_init_oauth,
                swagger_ui_parameters=app.swagger_ui_parameters,
            )
        )

    async def swagger_ui_oauth2_redirect(request: Request) -> HTMLResponse:
        return confined(get_swagger_ui_oauth2_redirect_html())

    async def redoc(request: Request) -> HTMLResponse:
        prefix = root(request)
        return confined(
            get_redoc_html(
                openapi_url=prefix + openapi_url,
                title=f"{app.title} - ReDoc",
                redoc_js_url=f"{prefix}{ASSETS_URL}/redoc/redoc.standalone.js",
                redoc_favicon_url=f"{prefix}{ASSETS_URL}/fastapi/favicon.png",
                with_google_fonts=False,
            )
        )

    async def redoc_logo(request: Request) -> FileResponse:
        return FileResponse(assets / "redoc" / "logo-mini.svg")

    app.add_route(DOCS_URL, swagger_ui, include_in_schema=False)
    app.add_route(OAUTH2_REDIRECT_URL, swagger_ui_oauth2_redirect, include_in_schema=False)
    app.add_route(REDOC_URL, redoc, include_in_schema=False)
    app.add_route(REDOC_LOGO_URL, redoc_logo, include_in_schema=False)
    app.mount(ASSETS_URL, StaticFiles(directory=assets))
