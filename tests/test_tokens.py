"""Tokens die with the password they were issued under, and with the account's activity."""

import asyncio
import sys

from httpx import AsyncClient

from tests.databases import PROJECT_ROOT, Database
from tests.helpers import PASSWORD, log_in, new_account


async def test_a_password_change_revokes_older_tokens(client: AsyncClient) -> None:
    me = await new_account(client)
    other_device = await log_in(client, me.email)
    response = await client.patch(
        "/users/me",
        json={"password": "a brand new passphrase", "current_password": PASSWORD},
        headers=me.headers,
    )
    assert response.status_code == 200
    for headers in (me.headers, other_device):
        old = await client.get("/users/me", headers=headers)
        assert old.status_code == 401
        assert old.headers["www-authenticate"] == "Bearer"
        refused = await client.post("/items/", json={"title": "x"}, headers=headers)
        assert refused.status_code == 401
    fresh = await log_in(client, me.email, "a brand new passphrase")
    assert (await client.get("/users/me", headers=fresh)).status_code == 200
    assert (await client.post("/items/", json={"title": "x"}, headers=fresh)).status_code == 200


async def test_an_email_change_keeps_tokens(client: AsyncClient) -> None:
    me = await new_account(client)
    changed = await client.patch("/users/me", json={"email": "new@example.com"}, headers=me.headers)
    assert changed.status_code == 200
    assert (await client.get("/users/me", headers=me.headers)).status_code == 200


async def test_deactivation_revokes_tokens_for_good(
    client: AsyncClient, database: Database
) -> None:
    me = await new_account(client)
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "app.cli", "deactivate-user", me.email),
        cwd=PROJECT_ROOT,
        env=database.environment(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    assert "deactivated" in out.decode()
    assert (await client.get("/users/me", headers=me.headers)).status_code == 401
    # Made active again, the account needs a new log-in: the old token stays dead.
    await database.execute("UPDATE users SET is_active = true WHERE id = :id", id=me.id)
    assert (await client.get("/users/me", headers=me.headers)).status_code == 401
    assert (await client.get("/users/me", headers=await log_in(client, me.email))).is_success
