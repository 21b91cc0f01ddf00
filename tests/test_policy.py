"""Who may act for whom: the policy's Python and SQL forms agree on every kind of caller."""

from collections.abc import Iterator
from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from sqlalchemy import literal, select

from app.api import auth, health, items, metrics, users
from app.api.dependencies import BearerToken, single_write, transaction
from app.api.idempotency import idempotent_write
from app.domain import policy
from app.domain.repositories.users import UserRepository
from app.domain.security import Bearer
from app.platform.engine import create_engine
from app.platform.errors import Forbidden, NotAuthenticated
from app.platform.sessions import Sessions
from tests.databases import Database, make_settings

ACCOUNTS = {  # name: (is_active, is_superuser)
    "owner": (True, False),
    "other user": (True, False),
    "inactive": (False, False),
    "superuser": (True, True),
    "inactive superuser": (False, True),
    "revoked token": (True, False),  # its token predates a password change
}
INVALID = (NotAuthenticated, "Could not validate credentials")
INACTIVE = (NotAuthenticated, "Inactive user")
# What each caller gets when acting for the owner: None (allowed) or the error.
EXPECTED: dict[str, tuple[type[Exception], str] | None] = {
    "anonymous": INVALID,
    "deleted": INVALID,
    "inactive": INACTIVE,
    "other user": (Forbidden, "Not enough permissions"),
    "owner": None,
    "superuser": None,
    "inactive superuser": INACTIVE,
    "revoked token": INVALID,
    "superuser with a revoked token": INVALID,
}


async def test_both_forms_of_the_policy_agree_on_every_caller(database: Database) -> None:
    ids: dict[str, Any] = {"anonymous": None}
    for name, (is_active, is_superuser) in ACCOUNTS.items():
        ids[name] = await database.scalar(
            "INSERT INTO users (email, hashed_password, is_active, is_superuser) "
            "VALUES (:email, 'x', :is_active, :is_superuser) RETURNING id",
            email=f"{name.replace(' ', '-')}@example.com",
            is_active=is_active,
            is_superuser=is_superuser,
        )
    ids["deleted"] = await database.scalar(
        "INSERT INTO users (email, hashed_password) VALUES ('gone@example.com', 'x') RETURNING id"
    )
    await database.execute("DELETE FROM users WHERE id = :id", id=ids["deleted"])
    await database.execute(
        "UPDATE users SET token_version = 1 WHERE id = :id", id=ids["revoked token"]
    )
    bearers = {name: Bearer(user_id or 0, 0) for name, user_id in ids.items()}
    bearers["superuser with a revoked token"] = Bearer(ids["superuser"], -1)
    ids["superuser with a revoked token"] = ids["superuser"]

    engine = create_engine(make_settings(database.url))
    try:
        async with Sessions(engine).read() as db:
            outcomes = {}
            for caller, bearer in bearers.items():
                principal = (
                    None
                    if ids[caller] is None
                    else await UserRepository(db).principal(bearer.user_id)
                )
                for owner in ("owner", caller):
                    owner_id = ids[owner] or 0
                    in_python = policy.refusal(principal, bearer, owner_id)
                    sql_bearer = (literal(ids[caller]), literal(bearer.token_version))
                    in_sql = await db.execute(
                        select(policy.may_act_for(sql_bearer, literal(owner_id)))
                    )
                    allowed_in_sql = bool(in_sql.scalar_one())
                    assert allowed_in_sql == (in_python is None), (caller, owner, in_python)
                    if owner == "owner":
                        outcomes[caller] = in_python
    finally:
        await engine.dispose()

    assert outcomes.keys() == EXPECTED.keys()
    for caller, refused in outcomes.items():
        expected = EXPECTED[caller]
        if expected is None:
            assert refused is None, caller
        else:
            assert type(refused) is expected[0], caller
            assert refused.detail == expected[1], caller


# Routes whose writes need no token: signing up and logging in.
OPEN_WRITES = {("POST", "/users/"), ("POST", "/auth/token")}


def _calls(dependant: Dependant) -> Iterator[Any]:
    for dependency in dependant.dependencies:
        yield dependency.call
        yield from _calls(dependency)


def test_every_route_that_writes_asks_who_the_caller_is() -> None:
    # A write route that forgot to ask for the caller would change data for anyone: a
    # route whose unit of work writes depends on the bearer token, whose user the
    # policy then judges (in the write's statement, or through MyAccountDep).
    writes = {single_write, transaction, idempotent_write}
    routes = [
        (method, route.path, list(_calls(route.dependant)))
        for module in (auth, health, items, metrics, users)
        for route in module.router.routes
        if isinstance(route, APIRoute)
        for method in route.methods or ()
    ]
    writing = {(method, path) for method, path, calls in routes if writes & set(calls)}
    asking = {
        (method, path)
        for method, path, calls in routes
        if any(isinstance(call, BearerToken) for call in calls)
    }
    assert writing - asking == OPEN_WRITES
    # Sign-up, log-in, the two item creations, an item's change and deletion, and /users/me's.
    assert len(writing) == 8
