"""Migrations run with the app's own settings and engine factory, asynchronously."""

import asyncio
from logging.config import fileConfig

from alembic import context
from sqlalchemy import pool, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from app.platform.engine import pgbouncer_connect_args
from app.platform.models import Base
from app.platform.settings import Settings

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name)

target_metadata = Base.metadata
# A caller may pass its own Settings (tests do); otherwise the environment decides,
# exactly as for the app.
settings: Settings = config.attributes.get("settings") or Settings()


def run_migrations_offline() -> None:
    context.configure(
        url=settings.engine_url,
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=settings.engine_url.get_backend_name() == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


def do_run_migrations(connection: Connection) -> None:
    is_sqlite = connection.dialect.name == "sqlite"
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things: batch mode copies the table instead.
        render_as_batch=is_sqlite,
        compare_server_default=True,
    )
    with context.begin_transaction():
        context.run_migrations()
    if is_sqlite:
        # Foreign keys stay off while batch mode copies tables (with them on,
        # dropping a parent table would cascade); check them once at the end.
        violations = connection.execute(text("PRAGMA foreign_key_check")).fetchall()
        if violations:
            raise RuntimeError(f"foreign key violations after migrating: {violations}")


async def run_migrations_online() -> None:
    # Not the app's engine factory: a one-shot connection, and on SQLite without
    # the app's pragmas, so foreign keys stay off while tables are copied.
    connect_args = pgbouncer_connect_args(settings) if settings.db_pgbouncer else {}
    engine = create_async_engine(
        settings.engine_url, poolclass=pool.NullPool, connect_args=connect_args
    )
    try:
        async with engine.connect() as connection:
            await connection.run_sync(do_run_migrations)
    finally:
        await engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    asyncio.run(run_migrations_online())
