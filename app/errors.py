"""Domain errors, and the one place where they and database failures become HTTP responses."""

import logging
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm.exc import StaleDataError

log = logging.getLogger("app.errors")


class DomainError(Exception):
    """An outcome the API promises; `status_code` and `detail` are what the client sees."""

    status_code = 400
    detail = "Bad request"
    headers: dict[str, str] | None = None

    def __init__(self, detail: str | None = None) -> None:
        if detail is not None:
            self.detail = detail
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


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def domain_error(_request: Request, error: DomainError) -> JSONResponse:
        return _error(error.status_code, error.detail, error.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, error: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": jsonable_encoder(_without_input(error))}, status_code=422)

    @app.exception_handler(sa_exc.IntegrityError)
    async def integrity_error(request: Request, error: sa_exc.IntegrityError) -> JSONResponse:
        # Violations the repositories expect become domain errors there; one that
        # reaches this point (e.g. a deferred constraint failing at COMMIT) means the
        # write conflicted with data written concurrently. Nothing was committed.
        log.warning("write refused on %s %s: %s", request.method, request.url.path, error)
        return _error(409, Conflict.detail)

    @app.exception_handler(StaleDataError)
    async def stale_data(request: Request, error: StaleDataError) -> JSONResponse:
        # A row changed or vanished under a concurrent request; repositories turn
        # the cases they expect into 404s.
        log.warning("concurrent change on %s %s: %s", request.method, request.url.path, error)
        return _error(409, Conflict.detail)

    @app.exception_handler(sa_exc.DBAPIError)
    async def database_error(request: Request, error: sa_exc.DBAPIError) -> JSONResponse:
        # SQLSTATE class 22 is "data exception": a value the database would not take.
        # Validation should have refused it first; if it did not, it is still the
        # request's data, and still a 4xx.
        if str(getattr(error.orig, "sqlstate", "")).startswith("22"):
            log.warning("data refused on %s %s: %s", request.method, request.url.path, error)
            return _error(422, "The request holds a value the database cannot store or compare")
        log.error("database error on %s %s", request.method, request.url.path, exc_info=error)
        return _error(500, "Internal Server Error")

    async def database_unavailable(request: Request, error: Exception) -> JSONResponse:
        log.error("database unavailable on %s %s", request.method, request.url.path, exc_info=error)
        return _error(503, "Database unavailable, retry later", {"Retry-After": "1"})

    # Lost or refused connections, timeouts, locks held too long, an exhausted
    # pool: the same request may well succeed when retried.
    for unavailable in (
        sa_exc.OperationalError,
        sa_exc.InterfaceError,
        sa_exc.TimeoutError,
        ConnectionError,
    ):
        app.add_exception_handler(unavailable, database_unavailable)
