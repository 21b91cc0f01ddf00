"""What the repositories share: the session kinds a repository may work in, pages,
and refused writes as domain errors."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy import Integer, Select, bindparam
from sqlalchemy.exc import IntegrityError

from app.domain.schemas import Page
from app.platform.errors import ConstraintKind, DomainError, violated_constraint
from app.platform.sessions import ReadSession, SingleWrite, Transaction

# The session a repository works in: any of the three kinds.
S = TypeVar("S", Transaction, SingleWrite, ReadSession)
Q = TypeVar("Q", bound=Select[*tuple[Any, ...]])


def paged(statement: Q, id_column: Any, *, after: bool) -> Q:
    """`statement` ordered by `id_column`, a page of it: bind parameters `skip` and
    `limit`, and `after` when `after` is set (keyset)."""
    if after:
        statement = statement.where(id_column > bindparam("after", type_=Integer))
    return (
        statement.order_by(id_column)
        .offset(bindparam("skip", type_=Integer))
        .limit(bindparam("limit", type_=Integer))
    )


def page_params(page: Page) -> dict[str, Any]:
    params: dict[str, Any] = {"skip": page.skip, "limit": page.limit}
    if page.after is not None:
        params["after"] = page.after
    return params


@contextmanager
def refused_for(kind: ConstraintKind, error: type[DomainError]) -> Iterator[None]:
    """The database refusing a write for a `kind` of constraint, as `error`."""
    try:
        yield
    except IntegrityError as refused:
        if violated_constraint(refused) == kind:
            raise error from refused
        raise
