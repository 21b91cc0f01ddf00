"""Domain errors, and the one place where they and database failures become HTTP responses."""

import logging
import traceback
from collections.abc import Iterable, Sequence
from enum import StrEnum
from typing import Any, Literal

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

log = logging.getLogger("app.errors")


class Unavailable(StrEnum):
    """Why a 503 was answered: the `reason` label of http_unavailable_total, which
    app.observability counts each 503 under, as its producer marked it."""

    DATABASE = "database unavailable"
    POOL_EXHAUSTED = "pool exhausted"
    HASHING_QUEUE_FULL = "hashing queue full"
    SHUTTING_DOWN = "shutting down"
    NOT_READY = "not ready"
    # Answered by the server (app.server) before the app sees the connection.
    TOO_MANY_CONNECTIONS = "too many connections"


UNMARKED = "other"  # a 503 nobody marked: a producer missing from Unavailable
_UNAVAILABLE = "unavailable"  # the key in the request's state


def mark_unavailable(scope: Scope, reason: Unavailable) -> None:
    """Say why this request is answered 503."""
    scope.setdefault("state", {})[_UNAVAILABLE] = reason


def why_unavailable(scope: Scope) -> str:
    """Why this request was answered 503, as marked (UNMARKED if it was not)."""
    reason: str = scope.get("state", {}).get(_UNAVAILABLE, UNMARKED)
    return reason


class DomainError(Exception):
    """An outcome the API promises; `status_code` and `detail` are what the client sees."""

    status_code = 400
    detail = "Bad request"
    headers: dict[str, str] | None = None
    unavailable_reason: Unavailable | None = None  # for a 503: why

    def __init__(self, detail: str | None = None, *, retry_after: int | None = None) -> None:
        if detail is not None:
            self.detail = detail
        if retry_after is not None:
            self.headers = {**(self.headers or {}), "Retry-After": str(retry_after)}
        super().__init__(self.detail)


class NotFound(DomainError):
    status_code = 404
    detail = "Not found"


class UserNotFound(NotFound):
    detail = "User not found"


class ItemNotFound(NotFound):
    detail = "Item not found"


class NotAuthenticated(DomainError):
    status_code = 401
    detail = "Could not validate credentials"
    headers = {"WWW-Authenticate": "Bearer"}  # noqa: RUF012 - read-only


class IncorrectLogin(NotAuthenticated):
    # One answer for an unknown email and a wrong password.
    detail = "Incorrect email or password"


class InactiveUser(DomainError):
    status_code = 400
    detail = "Inactive user"


class Forbidden(DomainError):
    status_code = 403
    detail = "Not enough permissions"


class IncorrectPassword(DomainError):
    status_code = 400
    detail = "Current password is incorrect"


class Conflict(DomainError):
    status_code = 409
    detail = "The request conflicts with the current state of the data; nothing was saved"


class PreconditionFailed(DomainError):
    status_code = 412
    detail = "The resource has changed since the ETag in If-Match; nothing was saved"

    def __init__(self, current_etag: str) -> None:
        super().__init__()
        # Where the resource is now: a client may retry its change against it.
        self.headers = {"ETag": current_etag}


class MalformedIfMatch(DomainError):
    status_code = 400
    detail = (
        "If-Match must be * or ETags as the ETag header gives them, in double quotes "
        '(e.g. "2"); nothing was saved'
    )


class PreconditionRequired(DomainError):
    status_code = 428
    detail = "This request needs an If-Match header with the resource's ETag"


class IdempotencyKeyInUse(DomainError):
    status_code = 409
    detail = "A request with this Idempotency-Key is still being processed; retry later"


class TooManyAttempts(DomainError):
    status_code = 429
    detail = "Too many failed log-ins; retry later"


class Busy(DomainError):
    status_code = 503
    detail = "Too many requests are waiting for password hashing; retry later"
    unavailable_reason = Unavailable.HASHING_QUEUE_FULL


class EmailAlreadyRegistered(DomainError):
    # 400, not 409: the seed API's contract for a duplicate sign-up.
    status_code = 400
    detail = "Email already registered"


ConstraintKind = Literal["unique", "foreign_key", "other"]

_PG_SQLSTATE = {"23505": "unique", "23503": "foreign_key"}
_SQLITE_ERROR = {
    "SQLITE_CONSTRAINT_UNIQUE": "unique",
    "SQLITE_CONSTRAINT_PRIMARYKEY": "unique",
    "SQLITE_CONSTRAINT_FOREIGNKEY": "foreign_key",
}


def violated_constraint(error: sa_exc.IntegrityError) -> ConstraintKind:
    """Which kind of constraint a database refused a write for, on either backend."""
    orig = error.orig
    sqlstate = getattr(orig, "sqlstate", None)
    if sqlstate is not None:
        return _PG_SQLSTATE.get(sqlstate, "other")  # type: ignore[return-value]
    return _SQLITE_ERROR.get(getattr(orig, "sqlite_errorname", ""), "other")  # type: ignore[return-value]


# SQLSTATEs after which the same request may well succeed when retried: 503.
_RETRYABLE_SQLSTATE_CLASSES = ("08",)  # connection exception
_RETRYABLE_SQLSTATES = {
    "55P03",  # lock_not_available: lock_timeout
    "57014",  # query_canceled: statement_timeout
    "40001",  # serialization_failure
    "40P01",  # deadlock_detected
    "57P01",  # admin_shutdown
    "57P02",  # crash_shutdown
    "57P03",  # cannot_connect_now: starting up, shutting down, in recovery
    "53300",  # too_many_connections
}
RETRY_AFTER = "1"  # seconds, in the Retry-After of every 503


def _sqlstate(error: sa_exc.DBAPIError) -> str:
    return str(getattr(error.orig, "sqlstate", None) or "")


def retryable(error: sa_exc.DBAPIError) -> bool:
    """Whether the database failed for a reason that may well be gone on a retry."""
    sqlstate = _sqlstate(error)
    return (
        error.connection_invalidated
        or sqlstate in _RETRYABLE_SQLSTATES
        or sqlstate.startswith(_RETRYABLE_SQLSTATE_CLASSES)
    )


def describe(error: BaseException, *, message: bool = True) -> str:
    """One line naming a failure for the log, without what the statement carried:
    not its parameters, nor PostgreSQL's DETAIL (which quotes the row: emails,
    password hashes), nor the SQL. `message=False` leaves out the driver's
    message too, for errors that may quote a value (SQLSTATE class 22)."""
    driver: BaseException = error
    text = str(error)
    if isinstance(error, sa_exc.DBAPIError) and error.orig is not None:
        # asyncpg's own exception, behind SQLAlchemy's adaptation of it, says more;
        # its first argument is the message alone.
        driver = error.orig.__cause__ or error.orig
        text = driver.args[0] if driver.args and isinstance(driver.args[0], str) else ""
    words = [type(driver).__name__]
    sqlstate = getattr(driver, "sqlstate", None)
    if sqlstate:
        words.append(f"[{sqlstate}]")
    if message and text:
        words.append(text.strip().splitlines()[0])
    return " ".join(words)


def cancelled_response(scope: Scope) -> JSONResponse:
    """What a request cancelled at shutdown answers, if it can (app.middleware)."""
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
        if _sqlstate(error).startswith("22"):
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
