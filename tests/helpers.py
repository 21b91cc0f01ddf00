"""Small client-side helpers shared by the tests."""

import uuid
from typing import Any

from httpx import AsyncClient

PASSWORD = "correct horse battery"


def unique_email() -> str:
    return f"user-{uuid.uuid4().hex[:12]}@example.com"


async def sign_up(
    client: AsyncClient, email: str | None = None, password: str = PASSWORD
) -> dict[str, Any]:
    response = await client.post(
        "/users/", json={"email": email or unique_email(), "password": password}
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def create_item(
    client: AsyncClient, owner_id: int, title: str = "a thing", **fields: Any
) -> dict[str, Any]:
    response = await client.post(f"/users/{owner_id}/items/", json={"title": title, **fields})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body
