"""Failures the service expects log one warning line each, and no log line carries
what a request carried: passwords, password hashes, emails, tokens."""

import logging

import pytest

from app.main import create_app
from tests.databases import Database, make_settings, serve
from tests.faults import table_locked
from tests.helpers import PASSWORD, new_account, unique_email

# Make sign-ups and account changes with emails starting 'refused-' fail in the
# database. PostgreSQL's own message for a CHECK quotes the whole row (email and
# password hash) in its DETAIL.
REFUSE_EMAILS = {
    "postgresql": [
        "ALTER TABLE users ADD CONSTRAINT refuse_some CHECK (email NOT LIKE 'refused-%')",
    ],
    "sqlite": [
        f"""CREATE TRIGGER refuse_some_{when} BEFORE {when} ON users
            WHEN NEW.email LIKE 'refused-%' BEGIN SELECT RAISE(ABORT, 'refused'); END"""
        for when in ("INSERT", "UPDATE")
    ],
}
LOGGERS = ("app", "sqlalchemy", "aiosqlite")


async def test_failing_writes_log_one_line_each_and_nothing_they_carried(
    database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    for logger in LOGGERS:
        caplog.set_level(logging.DEBUG, logger=logger)
    new_password = "a brand new passphrase"
    refused_email = f"refused-{unique_email()}"
    async with serve(create_app(make_settings(database.url))) as client:
        me = await new_account(client)
        token = me.headers["Authorization"].removeprefix("Bearer ")
        sign_up = {"email": refused_email, "password": new_password}
        change = {"email": refused_email, "password": new_password, "current_password": PASSWORD}
        await database.execute(*REFUSE_EMAILS[database.dialect])
        failing_from = len(caplog.records)

        failed = [
            await client.post("/users/", json=sign_up),
            await client.patch("/users/me", json=change, headers=me.headers),
        ]
        assert [r.status_code for r in failed] == [409, 409]
        if database.dialect == "postgresql":
            # The lock timeout: 503s, logged as one line each too.
            async with table_locked(database, "users"):
                locked_out = [
                    await client.post("/users/", json={**sign_up, "email": unique_email()}),
                    await client.patch("/users/me", json=change, headers=me.headers),
                ]
            assert [r.status_code for r in locked_out] == [503, 503]
            failed += locked_out

    warnings = [r for r in caplog.records[failing_from:] if r.levelno >= logging.WARNING]
    assert len(warnings) == len(failed), [r.getMessage() for r in warnings]
    for record in warnings:
        assert record.name == "app.errors"
        assert record.exc_info is None  # no traceback
        assert "\n" not in record.getMessage()

    logged = "\n".join(caplog.text.splitlines() + [r.getMessage() for r in caplog.records])
    assert "INSERT INTO users" in logged  # the statements are there: the capture works
    for carried in (PASSWORD, new_password, "$argon2", me.email, refused_email, token):
        assert carried not in logged, carried
