"""Liveness needs nothing; readiness needs the database, in time, at the schema's head."""

import asyncio
import time

from app.main import create_app
from tests.databases import (
    Database,
    Template,
    engine_of,
    make_settings,
    migrate,
    serve,
    unreachable,
)


async def test_live_and_ready_when_all_is_well(database: Database) -> None:
    async with serve(create_app(make_settings(database.url))) as client:
        for path in ("/health/live", "/health/ready", "/health"):
            response = await client.get(path)
            assert response.status_code == 200, path
            assert response.json() == {"status": "ok"}


async def test_ready_says_why_not(database: Database, template: Template) -> None:
    async with serve(create_app(make_settings(unreachable(database)))) as client:
        assert (await client.get("/health/live")).status_code == 200  # no I/O
        for path in ("/health/ready", "/health"):
            response = await client.get(path)
            assert response.status_code == 503
            assert response.headers["retry-after"]
            assert "unreachable" in response.json()["detail"]

    empty = await template.empty()
    async with serve(create_app(make_settings(empty))) as client:
        response = await client.get("/health/ready")
        assert response.status_code == 503
        assert "run the migrations" in response.json()["detail"]

    behind = await template.empty()
    await asyncio.to_thread(migrate, behind, "upgrade", "0002")
    async with serve(create_app(make_settings(behind))) as client:
        response = await client.get("/health/ready")
        assert response.status_code == 503
        assert "revision 0002" in response.json()["detail"]


async def test_ready_answers_at_once_when_the_request_pool_is_exhausted(
    database: Database,
) -> None:
    settings = make_settings(database.url, db_pool_size=1, db_max_overflow=0, db_pool_timeout=5)
    app = create_app(settings)
    async with serve(app) as client:
        async with engine_of(app).connect() as held:  # the pool's only connection
            await held.exec_driver_sql("SELECT 1")
            started = time.monotonic()
            response = await client.get("/health/ready")
            waited = time.monotonic() - started
        assert response.status_code == 200
        assert waited < 2, waited
