"""DATABASE_PASSWORD: a password given on its own reaches the driver exactly as it is.

Inside DATABASE_URL a password must be percent-encoded: `@`, `:`, `#`, `/` or `%`
in it change what the URL means (docker compose used to interpolate
POSTGRES_PASSWORD into the URL). Given as DATABASE_PASSWORD it is never parsed.

The local test server trusts connections from 127.0.0.1 whatever the password, so
a connection alone proves nothing about the password: the tests check what the
driver is handed, and then that the built URL connects, migrates and is ready.
"""

import asyncio

import pytest
from sqlalchemy import make_url, text

from app.cli import check, migrate
from app.platform.engine import create_engine, create_health_engine
from app.platform.settings import Settings
from tests.databases import TEST_DATABASE_URL, make_settings, postgres_account

# Each of the characters that break an interpolated URL, and an escape look-alike.
PASSWORD = "p@ss:w#rd/50%25?x=y&z"
URL = "postgresql+asyncpg://app@db:5432/app"


@pytest.mark.parametrize("password", ["p@ss", "50%41", PASSWORD])
def test_an_interpolated_password_breaks_the_url(password: str) -> None:
    # What the compose file used to build, and why it no longer does: the URL
    # names another host or password, or is no URL at all.
    try:
        url = make_url(f"postgresql+asyncpg://app:{password}@db:5432/app")
    except ValueError:
        return
    assert (url.password, url.host) != (password, "db")


def test_the_password_goes_into_the_url_as_it_is() -> None:
    settings = make_settings(URL, database_password=PASSWORD)
    url = settings.engine_url
    assert url.password == PASSWORD
    assert (url.drivername, url.username, url.host, url.port, url.database) == (
        "postgresql+asyncpg",
        "app",
        "db",
        5432,
        "app",
    )
    assert PASSWORD not in repr(settings)
    assert PASSWORD not in str(url)  # rendered for logs: hidden
    # What each engine hands asyncpg: the exact password, the unchanged address.
    for engine in (create_engine(settings), create_health_engine(settings)):
        assert engine.url.password == PASSWORD
        _, arguments = engine.dialect.create_connect_args(engine.url)
        assert arguments["password"] == PASSWORD
        assert (arguments["user"], arguments["host"], arguments["port"]) == ("app", "db", 5432)
        assert arguments["database"] == "app"


def test_database_password_replaces_a_password_in_the_url() -> None:
    settings = make_settings("postgresql+asyncpg://app:old@db:5432/app", database_password="new")
    assert settings.engine_url.password == "new"
    unset = make_settings("postgresql+asyncpg://app:p%40ss@db:5432/app")
    assert unset.engine_url.password == "p@ss"  # a percent-encoded URL still works
    empty = make_settings("postgresql+asyncpg://app:p%40ss@db:5432/app", database_password="")
    assert empty.engine_url.password == "p@ss"  # DATABASE_PASSWORD= in .env: not set


def test_database_password_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", URL)
    monkeypatch.setenv("DATABASE_PASSWORD", PASSWORD)
    assert Settings(_env_file=None).engine_url.password == PASSWORD


@pytest.mark.skipif(not TEST_DATABASE_URL, reason="needs PostgreSQL: set TEST_DATABASE_URL")
def test_a_role_with_such_a_password_migrates_and_serves() -> None:
    with postgres_account(TEST_DATABASE_URL, PASSWORD) as (role, database):
        server = make_url(TEST_DATABASE_URL)
        url = server.set(username=role, password=None, database=database)
        settings = make_settings(
            url.render_as_string(hide_password=False), database_password=PASSWORD
        )
        migrate(settings, sql=False)  # `app migrate`
        assert asyncio.run(check(settings)).startswith("ready")  # `app check`

        async def whoami() -> tuple[str, str]:
            engine = create_engine(settings)
            try:
                async with engine.connect() as connection:
                    query = text("SELECT current_user, current_database()")
                    row = (await connection.execute(query)).one()
                    return row[0], row[1]
            finally:
                await engine.dispose()

        assert asyncio.run(whoami()) == (role, database)
