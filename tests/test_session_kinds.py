"""A route's unit of work is declared in its signature, and each kind keeps its promise."""

import subprocess
import sys
import textwrap
import typing
from pathlib import Path

import pytest
from fastapi.routing import APIRoute
from httpx import AsyncClient
from sqlalchemy import func, insert, select

from app.api import auth, health, items, users
from app.api.dependencies import ReadSessionDep, SingleWriteDep
from app.main import create_app
from app.platform import sessions
from app.platform.models import User
from app.platform.settings import Settings
from tests.databases import PROJECT_ROOT, Database, serve

READS = {sessions.ReadSession, sessions.ReplicaRead}
KINDS = READS | {sessions.SingleWrite, sessions.Transaction}


def _declared_kinds(route: APIRoute) -> set[type]:
    hints = typing.get_type_hints(route.endpoint, include_extras=True)
    return {typing.get_args(hint)[0] for hint in hints.values() if typing.get_args(hint)} & KINDS


def test_reads_never_ask_for_a_session_that_writes() -> None:
    routes = [
        route
        for module in (auth, health, items, users)
        for route in module.router.routes
        if isinstance(route, APIRoute)
    ]
    declared = {
        (route.path, frozenset(route.methods or ())): _declared_kinds(route) for route in routes
    }
    for (path, methods), kinds in declared.items():
        assert len(kinds) <= 1, (path, methods, kinds)
        if methods <= {"GET", "HEAD"}:
            assert kinds <= READS, (path, methods)
    # The public reads may be served by a replica; /users/me reads through MyAccountViewDep.
    declared_kinds = {kind for kinds in declared.values() for kind in kinds}
    assert declared_kinds == KINDS - {sessions.ReadSession}


async def test_a_route_writing_through_a_read_session_fails(
    settings: Settings, database: Database
) -> None:
    app = create_app(settings)

    @app.post("/sneaky-write")
    async def sneaky_write(read: ReadSessionDep) -> None:
        await read.execute(insert(User).values(email="x@example.com", hashed_password="x"))  # type: ignore[arg-type]

    async with serve(app, raise_app_exceptions=False) as client:
        assert (await client.post("/sneaky-write")).status_code == 500
    assert await database.scalar("SELECT count(*) FROM users") == 0


async def test_a_single_write_runs_one_write_statement(
    settings: Settings, database: Database, client: AsyncClient
) -> None:
    app = create_app(settings)

    @app.post("/two-writes")
    async def two_writes(write: SingleWriteDep) -> None:
        await write.write(insert(User).values(email="a@example.com", hashed_password="x"))
        await write.write(insert(User).values(email="b@example.com", hashed_password="x"))

    @app.post("/write-then-read")
    async def write_then_read(write: SingleWriteDep) -> int:
        await write.write(insert(User).values(email="c@example.com", hashed_password="x"))
        return (await write.execute(select(func.count()).select_from(User))).scalar_one()

    async with serve(app, raise_app_exceptions=False) as client:
        assert (await client.post("/two-writes")).status_code == 500
        assert (await client.post("/write-then-read")).json() == 2
    # The first write had committed on its own: that is what the kind is for.
    emails = await database.column("SELECT email FROM users ORDER BY id")
    assert emails == ["a@example.com", "c@example.com"]


def test_the_type_checker_refuses_writes_through_a_read_session(tmp_path: Path) -> None:
    # What mypy (in `make test`) says of routes that write through the wrong kind.
    source = textwrap.dedent(
        """
        from sqlalchemy import insert

        from app.api.dependencies import ReadSessionDep, SingleWriteDep
        from app.domain.repositories.items import ItemRepository
        from app.domain.repositories.users import UserRepository
        from app.platform.models import Item, User


        async def writes_through_a_read_session(db: ReadSessionDep, item: Item) -> None:
            await ItemRepository(db).save(item)
            await UserRepository(db).add(email="a@example.com", hashed_password="x")
            await db.execute(insert(User))
            db.add(item)


        async def changes_an_entity_in_a_single_write(write: SingleWriteDep, item: Item) -> None:
            await ItemRepository(write).save(item)
        """
    )
    checked = tmp_path / "wrong_kinds.py"
    checked.write_text(source.lstrip())
    result = subprocess.run(  # noqa: S603 - fixed command line
        [sys.executable, "-m", "mypy", "--strict", "--no-error-summary", str(checked)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    errors = [line for line in result.stdout.splitlines() if ": error:" in line]
    lines = sorted(int(line.split(":")[1]) for line in errors)
    assert lines == [10, 11, 12, 13, 17], result.stdout


@pytest.mark.parametrize("kind", [sessions.ReadSession, sessions.SingleWrite])
def test_sessions_without_a_transaction_have_no_write_methods(kind: type) -> None:
    assert not hasattr(kind, "add")
    assert not hasattr(kind, "flush")
    assert not hasattr(kind, "commit")
