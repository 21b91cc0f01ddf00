"""Domain errors: the outcomes the API promises, with the status and detail a client
sees; and what a database failure was (a constraint, a retryable fault), named without
what the statement carried. app.api.errors turns them into responses."""

from enum import StrEnum
from typing import Literal

from sqlalchemy import exc as sa_exc


class Unavailable(StrEnum):
    """Why a 503 was answered: the `reason` label of http_unavailable_total, which each
    503 is counted under, as its producer marked it (app.api.errors)."""

    DATABASE = "database unavailable"
    POOL_EXHAUSTED = "pool exhausted"
    HASHING_QUEUE_FULL = "hashing queue full"
    SHUTTING_DOWN = "shutting down"
    NOT_READY = "not ready"
    # Answered by the server (app.server) before the app sees the connection.
    TOO_MANY_CONNECTIONS = "too many connections"


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
    state = getattr(orig, "sqlstate", None)
    if state is not None:
        return _PG_SQLSTATE.get(state, "other")  # type: ignore[return-value]
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


def sqlstate(error: sa_exc.DBAPIError) -> str:
    """The error's SQLSTATE ("" when the driver gave none)."""
    return str(getattr(error.orig, "sqlstate", None) or "")


def retryable(error: sa_exc.DBAPIError) -> bool:
    """Whether the database failed for a reason that may well be gone on a retry."""
    state = sqlstate(error)
    return (
        error.connection_invalidated
        or state in _RETRYABLE_SQLSTATES
        or state.startswith(_RETRYABLE_SQLSTATE_CLASSES)
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
    state = getattr(driver, "sqlstate", None)
    if state:
        words.append(f"[{state}]")
    if message and text:
        words.append(text.strip().splitlines()[0])
    return " ".join(words)
