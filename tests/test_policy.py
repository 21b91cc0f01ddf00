"""Who may act for whom: the policy's Python and SQL forms agree on every kind of caller."""

from typing import Any

from sqlalchemy import literal, select

from app import policy
from app.db import Sessions, create_engine
from app.errors import Forbidden, NotAuthenticated
from app.repositories import UserRepository
from app.security import Bearer
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
