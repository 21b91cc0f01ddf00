"""The one place where domain errors and database failures become HTTP responses, and
where a 503 says why it was answered (for the metrics)."""

import logging
import traceback
from collections.abc import Iterable, Sequence
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm.exc import StaleDataError
from starlette.exceptions import HTTPException
from starlette.routing import BaseRoute, Match
from starlette.types import Scope

from app.platform.errors import (
    RETRY_AFTER,
    Conflict,
    DomainError,
    Unavailable,
    describe,
    retryable,
    sqlstate,
)

log = logging.getLogger("app.errors")
_UNAVAILABLE = "unavailable"  # the key in the request's state
UNMARKED = "other"  # a 503 nobody marked: a producer missing from Unavailable


def mark_unavailable(scope: Scope, reason: Unavailable) -> None:
    """Say why this request is answered 503."""
    scope.setdefault("state", {})[_UNAVAILABLE] = reason


def why_unavailable(scope: Scope) -> str:
    """Why this request was answered 503, as marked (UNMARKED if it was not)."""
    reason: str = scope.get("state", {}).get(_UNAVAILABLE, UNMARKED)
    return reason


def cancelled_response(scope: Scope) -> JSONResponse:
    """What a request cancelled at shutdown answers, if it can (app.api.middleware)."""
    log.warning("cancelled on %s %s: shutting down", scope["method"], scope["path"])
    mark_unavailable(scope, Unavailable.SHUTTING_DOWN)
    return _error(503, "Shutting down, retry later", {"Retry-After": RETRY_AFTER})


def _error(status_code: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status_code, headers=headers)


def _without_input(error: RequestValidationError) -> list[dict[str, Any]]:
    # FastAPI's default echoes each offending value back ("input"); a rejected
    # password must not travel back over the wire, so the value is left out.
    errors = []
    for e in error.errors():
        entry = {k: v for k, v in e.items() if k != "input"}
        if "ctx" in entry:  # a validator's exception object becomes its message
            entry["ctx"] = {
                k: str(v) if isinstance(v, Exception) else v for k, v in entry["ctx"].items()
            }
        errors.append(entry)
    return errors


def allowed_methods(routes: Iterable[BaseRoute], scope: Scope) -> set[str]:
    """The methods of every route of the request's path."""
    methods: set[str] = set()
    for route in routes:
        route_methods: set[str] | None = getattr(route, "methods", None)
        if route_methods and route.matches(scope)[0] is not Match.NONE:
            methods |= route_methods
    return methods


class EarlyResponse(Exception):
    """A dependency that already knows the whole response (e.g. an idempotent replay)."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


def install_error_handlers(app: FastAPI, api_routes: Sequence[BaseRoute]) -> None:
    """`api_routes`: the routes of the routers the app includes (which the app's own
    list holds as one entry per router)."""

    @app.exception_handler(EarlyResponse)
    async def early_response(_request: Request, answer: EarlyResponse) -> Response:
        return answer.response

    @app.exception_handler(DomainError)
    async def domain_error(request: Request, error: DomainError) -> JSONResponse:
        if error.unavailable_reason is not None:
            mark_unavailable(request.scope, error.unavailable_reason)
        return _error(error.status_code, error.detail, error.headers)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> Response:
        response = await http_exception_handler(request, error)
        if error.status_code == 405:
            # Each route has one method, and Starlette's 405 names the first route's
            # of the path: `Allow` names them all.
            methods = allowed_methods([*api_routes, *app.router.routes], request.scope)
            if methods:
                response.headers["Allow"] = ", ".join(sorted(methods))
        return response

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, error: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": jsonable_encoder(_without_input(error))}, status_code=422)

    @app.exception_handler(sa_exc.IntegrityError)
    async def integrity_error(request: Request, error: sa_exc.IntegrityError) -> JSONResponse:
        # Violations the repositories expect become domain errors there; one that
        # reaches this point (e.g. a deferred constraint failing at COMMIT) means the
        # write conflicted with data written concurrently. Nothing was committed.
        log.warning("write refused on %s %s: %s", request.method, request.url.path, describe(error))
        return _error(409, Conflict.detail)

    @app.exception_handler(StaleDataError)
    async def stale_data(request: Request, error: StaleDataError) -> JSONResponse:
        # A row changed or vanished under a concurrent request; repositories turn
        # the cases they expect into 404s.
        log.warning("concurrent change on %s %s: %s", request.method, request.url.path, error)
        return _error(409, Conflict.detail)

    @app.exception_handler(sa_exc.DBAPIError)
    async def database_error(request: Request, error: sa_exc.DBAPIError) -> JSONResponse:
        if retryable(error):
            return await database_unavailable(request, error)
        # SQLSTATE class 22 is "data exception": a value the database would not take.
        # Validation should have refused it first; if it did not, it is still the
        # request's data, and still a 4xx.
        if sqlstate(error).startswith("22"):
            log.warning(
                "data refused on %s %s: %s",
                request.method,
                request.url.path,
                describe(error, message=False),
            )
            return _error(422, "The request holds a value the database cannot store or compare")
        # A bug: where it happened, and what, but not the message with its DETAIL.
        log.error(
            "database error on %s %s: %s\n%s",
            request.method,
            request.url.path,
            describe(error),
            "".join(traceback.format_tb(error.__traceback__)).rstrip(),
        )
        return _error(500, "Internal Server Error")

    async def database_unavailable(request: Request, error: Exception) -> JSONResponse:
        return _unavailable(request, error, Unavailable.DATABASE)

    @app.exception_handler(sa_exc.TimeoutError)
    async def pool_exhausted(request: Request, error: sa_exc.TimeoutError) -> JSONResponse:
        # No connection came free within DB_POOL_TIMEOUT: the client gets what a
        # database outage gives it; the metrics tell the two apart.
        return _unavailable(request, error, Unavailable.POOL_EXHAUSTED)

    def _unavailable(request: Request, error: Exception, reason: Unavailable) -> JSONResponse:
        # Expected under faults, and as many as there are requests: one line each.
        log.warning(
            "database unavailable on %s %s: %s", request.method, request.url.path, describe(error)
        )
        mark_unavailable(request.scope, reason)
        return _error(503, "Database unavailable, retry later", {"Retry-After": RETRY_AFTER})

    # Lost or refused connections, timeouts (asyncpg's), SQLite's lock: the same
    # request may well succeed when retried. asyncpg raises its timeouts and
    # socket errors as they are, and TimeoutError is an OSError.
    for unavailable in (sa_exc.OperationalError, sa_exc.InterfaceError, OSError):
        app.add_exception_handler(unavailable, database_unavailable)
