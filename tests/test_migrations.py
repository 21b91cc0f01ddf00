"""Alembic owns the schema: the migrations match the models and run both ways."""

import asyncio

from tests.databases import Database, Template, migrate, run_alembic

TABLES = {"users", "items", "idempotency_keys", "login_failures", "alembic_version"}


async def test_models_and_migrations_do_not_drift(database: Database) -> None:
    result = await asyncio.to_thread(run_alembic, database.url, "check")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No new upgrade operations detected" in result.stdout


async def test_migrations_upgrade_downgrade_and_upgrade_again(template: Template) -> None:
    database = Database(template.backend, await template.empty())
    await asyncio.to_thread(migrate, database.url, "upgrade", "head")
    assert await database.tables() == TABLES
    await asyncio.to_thread(migrate, database.url, "downgrade", "base")
    assert await database.tables() == {"alembic_version"}
    await asyncio.to_thread(migrate, database.url, "upgrade", "head")
    assert await database.tables() == TABLES


async def test_upgrading_a_database_that_holds_rows_keeps_them(template: Template) -> None:
    database = Database(template.backend, await template.empty())
    await asyncio.to_thread(migrate, database.url, "upgrade", "0001")
    await database.execute(
        "INSERT INTO users (email, hashed_password) VALUES ('a@example.com', 'h1')",
        "INSERT INTO users (email, hashed_password, is_active) VALUES ('b@x.com', 'h2', false)",
        "INSERT INTO items (title, description, owner_id) VALUES ('one', 'first', 1)",
        "INSERT INTO items (title, owner_id) VALUES ('two', 1)",
        "INSERT INTO items (title, owner_id) VALUES ('three', 2)",
    )

    await asyncio.to_thread(migrate, database.url, "upgrade", "head")

    assert await database.scalar("SELECT count(*) FROM users WHERE is_superuser = false") == 2
    assert await database.scalar("SELECT count(*) FROM users WHERE is_active = false") == 1
    assert await database.column("SELECT title FROM items ORDER BY id") == ["one", "two", "three"]
    # Every existing row starts at version 1, every account at token version 0.
    assert await database.column("SELECT version FROM items") == [1, 1, 1]
    assert await database.column("SELECT version FROM users") == [1, 1]
    assert await database.column("SELECT token_version FROM users") == [0, 0]
    # The foreign key now cascades: deleting a user takes its items along.
    await database.execute("DELETE FROM users WHERE id = 1")
    assert await database.scalar("SELECT count(*) FROM items") == 1
    # New rows continue after the old ids.
    await database.execute(
        "INSERT INTO users (email, hashed_password) VALUES ('c@example.com', 'h3')"
    )
    assert await database.scalar("SELECT max(id) FROM users") == 3
