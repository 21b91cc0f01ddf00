"""The app's middleware, pure ASGI (Starlette's base-class middleware breaks cancellation
and costs more): what operators see of every request (its id, its access line, its
metrics), the request-body limit, and the 503 for requests cancelled at shutdown."""

import asyncio
import contextlib
import logging
import random
import re
import time
from collections.abc import Sequence

import structlog
from starlette.datastructures import Headers
from starlette.middleware.body_limit import RequestBodyLimitMiddleware
from starlette.responses import PlainTextResponse
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.errors import cancelled_response, why_unavailable
from app.platform.logs import AccessRecord, access_log
from app.platform.metrics import Metrics

log = logging.getLogger("app")
REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")
# Kept out of the access log at info level: load balancers and scrapers call them
# every few seconds.
QUIET_PATHS = frozenset({"/health", "/health/live", "/health/ready", "/metrics"})


class Observe:
    """Request id, access line and metrics for every HTTP request, and the write's
    Consistency-Token on its response. Outermost, so that even a 413 or an unhandled
    error carries its request id."""

    def __init__(self, app: ASGIApp, *, access_log: bool, metrics: Metrics | None) -> None:
        self.app = app
        self.access_log = access_log
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope)
        header = (b"x-request-id", request_id.encode())
        status = 500
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                status, started = message["status"], True
                headers = [*message.get("headers", ()), header]
                # A write's, with replicas (app.api.dependencies.written): set by now,
                # as the unit of work ends before the response starts.
                token = scope.get("state", {}).get("consistency_token")
                if token is not None:
                    headers.append((b"consistency-token", token.encode()))
                message["headers"] = headers
            await send(message)

        bound = structlog.contextvars.bind_contextvars(request_id=request_id)
        start = time.perf_counter()
        if self.metrics:
            self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            # A bug: one line with its traceback, and a 500 that still has its id.
            log.exception("unhandled error on %s %s", scope["method"], scope["path"])
            if not started:
                await send_with_id(
                    {
                        "type": "http.response.start",
                        "status": 500,
                        "headers": [(b"content-type", b"application/json")],
                    }
                )
                await send_with_id({"type": "http.response.body", "body": INTERNAL_ERROR})
        finally:
            seconds = time.perf_counter() - start
            route = getattr(scope.get("route"), "path", "unmatched")
            if self.metrics:
                self.metrics.in_flight.dec()
                self.metrics.record(scope["method"], route, status, seconds)
                if status == 503:
                    self.metrics.unavailable.labels(why_unavailable(scope)).inc()
            level = logging.DEBUG if scope["path"] in QUIET_PATHS else logging.INFO
            if self.access_log and access_log.isEnabledFor(level):
                # What Logger.log does, less looking up where it was called from.
                access_log.handle(
                    AccessRecord(
                        level,
                        scope["method"],
                        route,
                        status,
                        round(seconds * 1000, 2),
                        scope.get("state", {}).get("user_id"),
                    )
                )
            structlog.contextvars.reset_contextvars(**bound)


INTERNAL_ERROR = b'{"detail":"Internal Server Error"}'


def _request_id(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            text: str = value.decode("latin-1")
            if REQUEST_ID.fullmatch(text):
                return text
            break
    # Not a secret, only unique: random's generator (reseeded in each forked worker)
    # costs a fraction of uuid4's system call for fresh entropy on every request.
    return f"{random.getrandbits(128):032x}"


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
