"""Alembic owns the schema: the migrations match the models and run both ways."""

import asyncio

from tests.conftest import Database, Template, migrate, run_alembic

TABLES = {"users", "items", "alembic_version"}


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
