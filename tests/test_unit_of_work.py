"""One request, one transaction: committed before the response, rolled back on any error."""

from typing import Any

from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm.exc import StaleDataError

from app.api.dependencies import TransactionDep
from app.domain.repositories.users import UserRepository
from app.main import create_app
from app.platform.settings import Settings
from tests.databases import Database, checked_out, engine_of, make_settings, serve, unreachable
from tests.helpers import create_item, new_account, new_superuser

# Database-level guards that let a write of the title 'fail-at-commit' succeed and
# make the COMMIT fail: the failure a default-scoped yield dependency would
# report as 200.
COMMIT_GUARD = {
    "postgresql": [
        """CREATE FUNCTION reject_at_commit() RETURNS trigger LANGUAGE plpgsql AS $$
           BEGIN
             IF NEW.title = 'fail-at-commit' THEN
               RAISE EXCEPTION 'rejected at commit' USING ERRCODE = 'check_violation';
             END IF;
             RETURN NULL;
           END $$""",
        """CREATE CONSTRAINT TRIGGER reject_at_commit AFTER INSERT OR UPDATE ON items
           DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION reject_at_commit()""",
    ],
    "sqlite": [
        "CREATE TABLE guard_parent (title TEXT PRIMARY KEY)",
        """CREATE TABLE guard_child (title TEXT
           REFERENCES guard_parent (title) DEFERRABLE INITIALLY DEFERRED)""",
        """CREATE TRIGGER reject_insert_at_commit AFTER INSERT ON items
           WHEN NEW.title = 'fail-at-commit'
           BEGIN INSERT INTO guard_child VALUES (NEW.title); END""",
        """CREATE TRIGGER reject_update_at_commit AFTER UPDATE ON items
           WHEN NEW.title = 'fail-at-commit'
           BEGIN INSERT INTO guard_child VALUES (NEW.title); END""",
    ],
}


async def test_a_failing_commit_is_an_error_response_and_saves_nothing(
    client: AsyncClient, database: Database
) -> None:
    owner = await new_account(client)
    item = await create_item(client, owner, "before")
    await database.execute(*COMMIT_GUARD[database.dialect])

    response = await client.patch(
        f"/items/{item['id']}", json={"title": "fail-at-commit"}, headers=owner.headers
    )

    # The UPDATE succeeded inside the transaction; the COMMIT failed: not a 2xx.
    assert response.status_code == 409
    assert response.json() == {
        "detail": "The request conflicts with the current state of the data; nothing was saved"
    }
    assert await database.scalar("SELECT title FROM items") == "before"
    # The guard only refuses that title: the same request otherwise commits.
    ok = await client.patch(f"/items/{item['id']}", json={"title": "after"}, headers=owner.headers)
    assert ok.status_code == 200
    assert await database.scalar("SELECT title FROM items") == "after"


async def test_a_failing_one_statement_write_is_an_error_response_and_saves_nothing(
    client: AsyncClient, database: Database
) -> None:
    # Creating an item is one statement, its own transaction: the deferred check
    # fails the statement itself, and the client hears of it the same way.
    owner = await new_account(client)
    await database.execute(*COMMIT_GUARD[database.dialect])
    for url in (f"/users/{owner.id}/items/", "/items/"):
        response = await client.post(url, json={"title": "fail-at-commit"}, headers=owner.headers)
        assert not response.is_success, url
        assert response.status_code < 500, url
    assert await database.scalar("SELECT count(*) FROM items") == 0


async def test_an_exception_after_a_write_rolls_the_write_back(
    settings: Settings, database: Database
) -> None:
    app = create_app(settings)

    @app.post("/write-then-fail")
    async def write_then_fail(tx: TransactionDep) -> None:
        await UserRepository(tx).add(email="ghost@example.com", hashed_password="x")
        raise RuntimeError("failure after the write")

    async with serve(app, raise_app_exceptions=False) as client:
        response = await client.post("/write-then-fail")
        assert response.status_code == 500
        assert (await client.get("/users/")).json() == []
    assert await database.scalar("SELECT count(*) FROM users") == 0


async def test_no_connection_stays_checked_out_after_any_kind_of_request(
    app: FastAPI, client: AsyncClient, database: Database
) -> None:
    owner = await new_account(client)
    admin = await new_superuser(client, database)
    await database.execute(*COMMIT_GUARD[database.dialect])
    mine = f"/users/{owner.id}/items/"
    item = await create_item(client, owner, "before")
    requests: list[tuple[str, str, Any, dict[str, str], int]] = [
        ("GET", f"/users/{owner.id}", None, {}, 200),
        ("GET", "/users/999", None, {}, 404),
        ("POST", "/users/", {"email": owner.email, "password": "long enough"}, {}, 400),
        ("POST", "/auth/token", None, {}, 422),
        ("GET", "/users/me", None, {"Authorization": "Bearer nonsense"}, 401),
        ("POST", mine, {"title": "x"}, {}, 401),
        ("POST", f"/users/{admin.id}/items/", {"title": "x"}, owner.headers, 403),
        ("POST", "/users/999/items/", {"title": "orphan"}, admin.headers, 404),  # failed INSERT
        ("PATCH", f"/items/{item['id']}", {"title": "fail-at-commit"}, owner.headers, 409),
        ("POST", mine, {"title": ""}, owner.headers, 422),
        ("GET", "/items/?limit=1000", None, {}, 422),
        ("DELETE", "/users/me", None, owner.headers, 204),
    ]
    for method, url, body, headers, expected in requests:
        response = await client.request(method, url, json=body, headers=headers)
        assert response.status_code == expected, (method, url, response.text)
        assert checked_out(app) == 0, (method, url)


async def test_an_unreachable_database_is_503_not_500(database: Database) -> None:
    app = create_app(make_settings(unreachable(database)))
    async with serve(app) as client:
        health = await client.get("/health")  # readiness: it says why (tests/test_health.py)
        assert health.status_code == 503
        assert health.headers["retry-after"] == "1"
        for response in (
            await client.get("/users/1"),
            await client.post(
                "/users/", json={"email": "a@example.com", "password": "long enough"}
            ),
        ):
            assert response.status_code == 503
            assert response.json() == {"detail": "Database unavailable, retry later"}
            assert response.headers["retry-after"] == "1"


async def test_an_exhausted_pool_answers_503_instead_of_hanging(database: Database) -> None:
    settings = make_settings(database.url, db_pool_size=1, db_max_overflow=0, db_pool_timeout=0.2)
    app = create_app(settings)
    async with serve(app) as client:
        async with engine_of(app).connect() as held:  # the pool's only connection
            await held.exec_driver_sql("SELECT 1")
            response = await client.get("/users/1")
            assert response.status_code == 503
        assert (await client.get("/users/1")).status_code == 404
        assert (await client.get("/health")).json() == {"status": "ok"}


class _DriverError(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__(f"driver error {sqlstate}")
        self.sqlstate = sqlstate


async def test_unexpected_database_errors_still_map_to_clear_statuses(
    settings: Settings,
) -> None:
    # Safety nets behind validation and the repositories: what they would answer if
    # a database error slipped past both.
    app = create_app(settings)
    raised: dict[str, Exception] = {
        "data": sa_exc.DataError("SELECT", {}, _DriverError("22021")),
        "other": sa_exc.DBAPIError("SELECT", {}, _DriverError("XX000")),
        "stale": StaleDataError("UPDATE matched no row"),
    }

    @app.get("/raise/{kind}")
    async def raise_(kind: str) -> None:
        raise raised[kind]

    async with serve(app, raise_app_exceptions=False) as client:
        answers = {kind: await client.get(f"/raise/{kind}") for kind in raised}
    assert answers["data"].status_code == 422
    assert answers["other"].status_code == 500
    assert answers["stale"].status_code == 409
    assert all("detail" in answer.json() for answer in answers.values())


async def test_database_failures_worth_a_retry_are_503_with_retry_after(
    settings: Settings,
) -> None:
    # Lock and statement timeouts, serialization failures and deadlocks, lost or
    # refused connections, a server shutting down or starting up, client-side
    # timeouts, an exhausted pool: the same request may well succeed later.
    app = create_app(settings)
    sqlstates = ["55P03", "57014", "40001", "40P01", "08000", "08003", "08006"]
    sqlstates += ["57P01", "57P02", "57P03", "53300"]
    raised: dict[str, Exception] = {
        code: sa_exc.DBAPIError("SELECT", {}, _DriverError(code)) for code in sqlstates
    }
    raised["invalidated"] = sa_exc.DBAPIError(
        "SELECT", {}, Exception("connection lost"), connection_invalidated=True
    )
    raised["command timeout"] = TimeoutError()
    raised["refused"] = ConnectionRefusedError(111, "Connection refused")
    raised["pool timeout"] = sa_exc.TimeoutError("QueuePool limit reached")
    raised["integrity"] = sa_exc.IntegrityError("INSERT", {}, _DriverError("23514"))

    @app.get("/raise/{kind}")
    async def raise_(kind: str) -> None:
        raise raised[kind]

    async with serve(app, raise_app_exceptions=False) as client:
        answers = {kind: await client.get(f"/raise/{kind}") for kind in raised}
    assert answers.pop("integrity").status_code == 409
    for kind, answer in answers.items():
        assert answer.status_code == 503, kind
        assert answer.headers["retry-after"] == "1", kind
        assert answer.json() == {"detail": "Database unavailable, retry later"}, kind
