"""Pure ASGI middleware (Starlette's base-class middleware breaks cancellation, costs more)."""

from starlette.middleware.body_limit import RequestBodyLimitMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send


class LimitRequestBodies:
    """Starlette's request-body limit (413 beyond `max_body_size`), applied to the
    requests that may carry a body. GET and HEAD bodies are never read, so those
    requests skip its bookkeeping."""

    def __init__(self, app: ASGIApp, max_body_size: int) -> None:
        self.app = app
        self.limited = RequestBodyLimitMiddleware(app, max_body_size)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] not in ("GET", "HEAD"):
            await self.limited(scope, receive, send)
        else:
            await self.app(scope, receive, send)
