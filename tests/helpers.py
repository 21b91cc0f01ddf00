"""Client-side helpers shared by the tests."""

import uuid
from dataclasses import dataclass
from typing import Any

from httpx import AsyncClient

from tests.databases import Database

PASSWORD = "correct horse battery"


def unique_email() -> str:
    return f"user-{uuid.uuid4().hex[:12]}@example.com"


@dataclass
class Account:
    """A signed-up user, logged in."""

    user: dict[str, Any]  # the sign-up response
    password: str
    headers: dict[str, str]  # Authorization: Bearer <token>

    @property
    def id(self) -> int:
        user_id: int = self.user["id"]
        return user_id

    @property
    def email(self) -> str:
        email: str = self.user["email"]
        return email


async def sign_up(
    client: AsyncClient, email: str | None = None, password: str = PASSWORD
) -> dict[str, Any]:
    response = await client.post(
        "/users/", json={"email": email or unique_email(), "password": password}
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def log_in(client: AsyncClient, email: str, password: str = PASSWORD) -> dict[str, str]:
    response = await client.post("/auth/token", data={"username": email, "password": password})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def new_account(
    client: AsyncClient, email: str | None = None, password: str = PASSWORD
) -> Account:
    user = await sign_up(client, email, password)
    return Account(user, password, await log_in(client, user["email"], password))


async def create_item(
    client: AsyncClient, owner: Account, title: str = "a thing", **fields: Any
) -> dict[str, Any]:
    response = await client.post(
        f"/users/{owner.id}/items/", json={"title": title, **fields}, headers=owner.headers
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def new_superuser(client: AsyncClient, database: Database) -> Account:
    account = await new_account(client)
    await database.execute("UPDATE users SET is_superuser = true WHERE id = :id", id=account.id)
    return account
