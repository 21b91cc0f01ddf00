"""The token's own account: read it, change it, delete it; and who may add items where."""

import asyncio
import sys

from httpx import AsyncClient

from tests.databases import PROJECT_ROOT, Database
from tests.helpers import (
    PASSWORD,
    create_item,
    log_in,
    new_account,
    new_superuser,
    unique_email,
)


async def test_read_me_with_items(client: AsyncClient) -> None:
    me = await new_account(client)
    item = await create_item(client, me, "Clock")
    response = await client.get("/users/me", headers=me.headers)
    assert response.status_code == 200
    assert response.json() == {**me.user, "items": [item]}


async def test_change_email(client: AsyncClient) -> None:
    me = await new_account(client)
    response = await client.patch(
        "/users/me", json={"email": "New.Address@Example.com"}, headers=me.headers
    )
    assert response.status_code == 200
    assert response.json() == {**me.user, "email": "new.address@example.com"}
    await log_in(client, "new.address@example.com")
    old = await client.post("/auth/token", data={"username": me.email, "password": PASSWORD})
    assert old.status_code == 401


async def test_an_email_in_use_cannot_be_taken(client: AsyncClient) -> None:
    me, other = await new_account(client), await new_account(client)
    response = await client.patch(
        "/users/me", json={"email": other.email.upper()}, headers=me.headers
    )
    assert response.status_code == 400
    assert response.json() == {"detail": "Email already registered"}
    assert (await client.get("/users/me", headers=me.headers)).json()["email"] == me.email


async def test_change_password_needs_the_current_one(client: AsyncClient) -> None:
    me = await new_account(client)
    new_password = "a much better passphrase"

    missing = await client.patch("/users/me", json={"password": new_password}, headers=me.headers)
    assert missing.status_code == 422
    wrong = await client.patch(
        "/users/me",
        json={"password": new_password, "current_password": "not it"},
        headers=me.headers,
    )
    assert wrong.status_code == 400
    assert wrong.json() == {"detail": "Current password is incorrect"}
    await log_in(client, me.email, PASSWORD)  # unchanged

    changed = await client.patch(
        "/users/me",
        json={"password": new_password, "current_password": PASSWORD},
        headers=me.headers,
    )
    assert changed.status_code == 200
    assert PASSWORD not in changed.text
    assert new_password not in changed.text
    await log_in(client, me.email, new_password)
    old = await client.post("/auth/token", data={"username": me.email, "password": PASSWORD})
    assert old.status_code == 401


async def test_invalid_account_changes_are_refused(client: AsyncClient) -> None:
    me = await new_account(client)
    for body in (
        {"email": None},
        {"email": "not-an-email"},
        {"password": "short", "current_password": PASSWORD},
        {"password": "x" * 129, "current_password": PASSWORD},
    ):
        response = await client.patch("/users/me", json=body, headers=me.headers)
        assert response.status_code == 422, body
    assert (await client.get("/users/me", headers=me.headers)).json() == me.user
    await log_in(client, me.email, PASSWORD)


async def test_deleting_an_account_deletes_its_items_and_its_tokens(
    client: AsyncClient, database: Database
) -> None:
    me, other = await new_account(client), await new_account(client)
    for title in ("one", "two", "three"):
        await create_item(client, me, title)
    kept = await create_item(client, other, "not mine")

    response = await client.delete("/users/me", headers=me.headers)
    assert response.status_code == 204
    assert response.content == b""
    assert "content-type" not in response.headers  # no content: no type either
    assert "content-length" not in response.headers

    assert await database.scalar("SELECT count(*) FROM items") == 1
    assert (await client.get("/items/")).json() == [kept]
    assert (await client.get(f"/users/{me.id}")).status_code == 404
    stale = await client.get("/users/me", headers=me.headers)
    assert stale.status_code == 401
    assert stale.headers["www-authenticate"] == "Bearer"


async def test_ids_are_not_reused_so_old_tokens_stay_dead(client: AsyncClient) -> None:
    me = await new_account(client)  # the newest user: its id is the one a database would reuse
    assert (await client.delete("/users/me", headers=me.headers)).status_code == 204
    newcomer = await new_account(client)
    assert newcomer.id > me.id
    assert (await client.get("/users/me", headers=me.headers)).status_code == 401


async def test_who_may_create_items_for_a_user(client: AsyncClient, database: Database) -> None:
    owner, other = await new_account(client), await new_account(client)
    admin = await new_superuser(client, database)
    url = f"/users/{owner.id}/items/"
    expected = {"anonymous": 401, "other": 403, "owner": 200, "admin": 200}
    for name, who in {"anonymous": None, "other": other, "owner": owner, "admin": admin}.items():
        response = await client.post(
            url, json={"title": f"by {name}"}, headers=who.headers if who else {}
        )
        assert response.status_code == expected[name], name
        if response.status_code == 200:
            assert response.json()["owner_id"] == owner.id
    titles = [i["title"] for i in (await client.get(f"/users/{owner.id}")).json()["items"]]
    assert titles == ["by owner", "by admin"]


async def test_me_routes_need_a_token(client: AsyncClient, database: Database) -> None:
    await new_account(client)
    for method in ("GET", "PATCH", "DELETE"):
        response = await client.request(method, "/users/me", json={"email": unique_email()})
        assert response.status_code == 401, method
        assert response.headers["www-authenticate"] == "Bearer"
    assert (await client.post("/items/", json={"title": "x"})).status_code == 401
    assert await database.scalar("SELECT count(*) FROM users") == 1
    assert await database.scalar("SELECT count(*) FROM items") == 0


async def create_superuser(database: Database, email: str, stdin: bytes = b"") -> str:
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "app.cli", "create-superuser", email),
        cwd=PROJECT_ROOT,
        env=database.environment(),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate(stdin)
    assert process.returncode == 0, err.decode()
    return out.decode()


async def test_create_superuser_command(client: AsyncClient, database: Database) -> None:
    owner = await new_account(client)
    item = await create_item(client, owner, "Chair")
    email, password = unique_email(), "root password!"

    output = await create_superuser(database, email.upper(), f"{password}\n".encode())
    assert f"created superuser {email}" in output
    admin = await log_in(client, email, password)
    response = await client.patch(f"/items/{item['id']}", json={"title": "Throne"}, headers=admin)
    assert response.status_code == 200

    # For an existing account it promotes it, and leaves its password alone.
    assert "is now a superuser" in await create_superuser(database, owner.email)
    assert await database.scalar("SELECT count(*) FROM users WHERE is_superuser = true") == 2
    await log_in(client, owner.email, PASSWORD)
