"""Tokens die with the password they were issued under, and with the account's activity."""

from httpx import AsyncClient

from tests.databases import Database
from tests.helpers import PASSWORD, log_in, new_account
from tests.servers import app_command


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
    env = database.environment()
    deactivated = await app_command(env, "deactivate-user", me.email)
    assert deactivated.status == 0, deactivated.err
    assert "deactivated" in deactivated.out
    assert (await client.get("/users/me", headers=me.headers)).status_code == 401
    refused = await client.post("/auth/token", data={"username": me.email, "password": PASSWORD})
    assert refused.status_code == 400
    assert refused.json() == {"detail": "Inactive user"}

    # Made active again, the account logs in anew: the old token stays dead.
    activated = await app_command(env, "activate-user", me.email.upper())
    assert activated.status == 0, activated.err
    assert f"{me.email} (id {me.id}) is active again" in activated.out
    assert (await client.get("/users/me", headers=me.headers)).status_code == 401
    fresh = await log_in(client, me.email)
    assert (await client.get("/users/me", headers=fresh)).json()["is_active"] is True
    again = await app_command(env, "activate-user", me.email)
    assert again.status == 0, again.err
    assert "active already" in again.out
    assert (await client.get("/users/me", headers=fresh)).status_code == 200  # untouched

    unknown = await app_command(env, "activate-user", "nobody@example.com")
    assert unknown.status != 0
    assert unknown.err.strip() == "no account has the email nobody@example.com"
