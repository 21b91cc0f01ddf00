"""What the repositories share: the session kinds a repository may work in, pages,
and refused writes as domain errors."""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Integer, Select, bindparam
from sqlalchemy.exc import IntegrityError

from app.domain.schemas import Page, ViewDict
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


@dataclass(frozen=True, slots=True)
class PageOfViews:
    """A page of a list: its views, and the `after` that reads the next page (None when
    this is the last)."""

    views: list[ViewDict]
    next_after: int | None


def page_params(page: Page) -> dict[str, Any]:
    """The bind parameters of `paged()`. One row more than the page is read: whether it
    comes tells whether a next page exists (see `page_of`)."""
    params: dict[str, Any] = {"skip": page.skip, "limit": page.limit + 1}
    if page.after is not None:
        params["after"] = page.after
    return params


def page_of(views: list[ViewDict], page: Page) -> PageOfViews:
    """Views read with `page_params(page)` as that page: the extra row, if it came, is
    left out, and the page's last id is where the next one starts."""
    if len(views) <= page.limit:
        return PageOfViews(views, None)
    views = views[: page.limit]
    return PageOfViews(views, views[-1]["id"])


@contextmanager
def refused_for(kind: ConstraintKind, error: type[DomainError]) -> Iterator[None]:
    """The database refusing a write for a `kind` of constraint, as `error`."""
    try:
        yield
    except IntegrityError as refused:
        if violated_constraint(refused) == kind:
            raise error from refused
        raise
