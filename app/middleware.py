"""Pure ASGI middleware (Starlette's base-class middleware breaks cancellation, costs more)."""

import asyncio
import contextlib
from collections.abc import Sequence

from starlette.datastructures import Headers
from starlette.middleware.body_limit import RequestBodyLimitMiddleware
from starlette.responses import PlainTextResponse
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Receive, Scope, Send

from app.errors import cancelled_response


class LimitRequestBodies:
    """Starlette's request-body limit (413 beyond `max_body_size`), applied to the
    requests that may carry a body. GET and HEAD bodies are never read, so those
    requests skip its bookkeeping.

    A request whose Content-Length is over the limit gets 413 before any route runs:
    Starlette's limit alone answers it only when the route reads the body or starts
    its response, so a route that never reads one (a DELETE) would have done its work
    by then. A body with a Content-Length within the limit goes through as it is (the
    server reads no more than that); one without is counted as it is read.

    `routes`: those a request with a body may be for. A 413 answered here names the
    one it was for in `scope["route"]`, as routing would have, for its access line
    and metrics.
    """

    def __init__(self, app: ASGIApp, max_body_size: int, routes: Sequence[BaseRoute]) -> None:
        self.app = app
        self.max_body_size = max_body_size
        self.limited = RequestBodyLimitMiddleware(app, max_body_size)
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        length = Headers(scope=scope).get("content-length", "")
        if length.isascii() and length.isdigit():
            if int(length) > self.max_body_size:
                route = self._route(scope)
                if route is not None:
                    scope["route"] = route
                response = PlainTextResponse("Content Too Large", status_code=413)
                await response(scope, receive, send)
                return
            # The server reads no more than the Content-Length: nothing left to count.
            await self.app(scope, receive, send)
            return
        await self.limited(scope, receive, send)

    def _route(self, scope: Scope) -> BaseRoute | None:
        """The route routing would pick: the path's for this method, else the path's
        (whose 405 names it too)."""
        of_the_path = None
        for route in self.routes:
            match, _ = route.matches(scope)
            if match is Match.FULL:
                return route
            if match is Match.PARTIAL and of_the_path is None:
                of_the_path = route
        return of_the_path


class AnswerCancelledRequests:
    """A request cancelled before it answered gets a 503 to retry, rather than the
    server's plain 500 or a dropped connection. Cancelled means the server is
    shutting down and its grace period is over (GRACEFUL_SHUTDOWN_TIMEOUT); the
    request's unit of work was rolled back on the way out. The cancellation
    itself goes on."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.app(scope, receive, send)
        except asyncio.CancelledError:
            if scope["type"] == "http":
                # Nothing to do if the response had started, or the client left.
                with contextlib.suppress(Exception):
                    await cancelled_response(scope)(scope, receive, send)
            raise
