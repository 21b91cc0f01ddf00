"""Who may act for whom. The rule is written here once, in the two forms the code needs.

An account's data is changed by that account, or by a superuser; in both cases
only by an account that still exists and is active, through a token issued
under its current token version (a password change or a deactivation revokes
the tokens issued before it). A request is judged in this order: who asks (the
token, and the account it names: 401), what exists (404), whose it is (403),
which version (412). The two forms, side by side:

- `refusal(caller, bearer, owner_id)`, in Python, for a caller already loaded:
  the error to answer with, or None when the caller may act;
- `may_act_for(bearer, owner_id)`, in SQL: a condition that a write statement
  carries, so that the check and the write are one atomic statement.

tests/test_policy.py runs the whole matrix of callers through both forms and
checks that they agree. When the SQL form refuses a write, app.domain.refusals reads
why, in the order above.
"""

from typing import Any, NamedTuple, TypeVar

from sqlalchemy import ColumnElement, exists, or_

from app.domain.security import Bearer
from app.platform.errors import DomainError, Forbidden, NotAuthenticated
from app.platform.models import User


class Principal(NamedTuple):
    """What authorising a request needs to know of the token's user."""

    id: int
    is_active: bool
    is_superuser: bool
    token_version: int


# Selecting these gives a Principal.
PRINCIPAL_COLUMNS = (User.id, User.is_active, User.is_superuser, User.token_version)
Caller = TypeVar("Caller", Principal, User)


def authentication_failure(
    caller: Principal | User | None, bearer: Bearer
) -> NotAuthenticated | None:
    """Why the user of a validly signed token may not act at all, if it may not."""
    if caller is None:  # deleted since the token was issued
        return NotAuthenticated()
    if not caller.is_active:
        return NotAuthenticated("Inactive user")
    if caller.token_version != bearer.token_version:  # revoked
        return NotAuthenticated()
    return None


def refusal(caller: Principal | None, bearer: Bearer, owner_id: int) -> DomainError | None:
    """Why `caller` may not change what belongs to `owner_id`, if it may not."""
    failure = authentication_failure(caller, bearer)
    if failure is not None or caller is None:
        return failure
    if caller.id != owner_id and not caller.is_superuser:
        return Forbidden()
    return None


def authenticated(caller: Caller | None, bearer: Bearer) -> Caller:
    """The caller, if it may act at all; raises the 401 otherwise."""
    failure = authentication_failure(caller, bearer)
    if failure is not None or caller is None:
        raise failure or NotAuthenticated()
    return caller


def may_act_for(bearer: Any, owner_id: Any) -> ColumnElement[bool]:
    """The same rule in SQL. `bearer` holds the token's user id and token version
    (values or bind parameters); `owner_id` is a value, a parameter or a column."""
    user_id, token_version = bearer
    return exists().where(
        User.id == user_id,
        User.is_active,
        User.token_version == token_version,
        or_(User.id == owner_id, User.is_superuser),
    )
