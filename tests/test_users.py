"""The seed's user routes: sign-up, read one, list."""

import asyncio

from httpx import AsyncClient

from tests.databases import Database
from tests.helpers import PASSWORD, create_item, new_account, sign_up, unique_email


async def test_sign_up_returns_the_new_user_without_any_password(client: AsyncClient) -> None:
    email = unique_email()
    response = await client.post("/users/", json={"email": email, "password": PASSWORD})
    assert response.status_code == 200
    body = response.json()
    assert body == {"email": email, "id": body["id"], "is_active": True, "items": []}
    assert isinstance(body["id"], int)
    assert PASSWORD not in response.text


async def test_passwords_are_stored_as_argon2_hashes(
    client: AsyncClient, database: Database
) -> None:
    user = await sign_up(client)
    stored = await database.scalar(
        "SELECT hashed_password FROM users WHERE id = :id", id=user["id"]
    )
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored


async def test_sign_up_with_a_registered_email_is_refused(client: AsyncClient) -> None:
    user = await sign_up(client)
    response = await client.post("/users/", json={"email": user["email"], "password": PASSWORD})
    assert response.status_code == 400
    assert response.json() == {"detail": "Email already registered"}


async def test_emails_are_compared_case_insensitively(client: AsyncClient) -> None:
    user = await sign_up(client, email="Ada.Lovelace@Example.COM")
    assert user["email"] == "ada.lovelace@example.com"
    response = await client.post(
        "/users/", json={"email": "ADA.LOVELACE@example.com", "password": PASSWORD}
    )
    assert response.status_code == 400
    assert response.json() == {"detail": "Email already registered"}


async def test_concurrent_sign_ups_with_one_email_create_exactly_one_user(
    client: AsyncClient, database: Database
) -> None:
    email = unique_email()
    # Different spellings of one address: only the unique constraint can decide.
    variants = [email.upper() if i % 2 else email for i in range(50)]
    responses = await asyncio.gather(
        *(client.post("/users/", json={"email": e, "password": PASSWORD}) for e in variants)
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] + [400] * 49
    assert all(
        r.json() == {"detail": "Email already registered"}
        for r in responses
        if r.status_code == 400
    )
    assert await database.scalar("SELECT count(*) FROM users") == 1


async def test_invalid_sign_ups_are_refused_and_create_nothing(
    client: AsyncClient, database: Database
) -> None:
    bad_bodies = [
        {"email": "not-an-email", "password": PASSWORD},
        {"email": unique_email(), "password": "short"},
        {"email": unique_email(), "password": "x" * 129},
        {"email": unique_email()},
        {"password": PASSWORD},
        {"email": ["a@example.com"], "password": PASSWORD},
        {"email": unique_email(), "password": 12345678},
    ]
    for body in bad_bodies:
        response = await client.post("/users/", json=body)
        assert response.status_code == 422, body
        assert "detail" in response.json()
    assert await database.scalar("SELECT count(*) FROM users") == 0


async def test_a_rejected_password_is_not_echoed_back(client: AsyncClient) -> None:
    response = await client.post("/users/", json={"email": unique_email(), "password": "hunter2"})
    assert response.status_code == 422
    assert "hunter2" not in response.text
    assert response.json()["detail"][0]["loc"] == ["body", "password"]


async def test_read_user_includes_items_in_id_order(client: AsyncClient) -> None:
    owner = await new_account(client)
    other = await new_account(client)
    first = await create_item(client, owner, "first", description="one")
    await create_item(client, other, "not mine")
    second = await create_item(client, owner, "second")
    response = await client.get(f"/users/{owner.id}")
    assert response.status_code == 200
    assert response.json() == {**owner.user, "items": [first, second]}


async def test_read_missing_user_is_404(client: AsyncClient) -> None:
    response = await client.get("/users/4242")
    assert response.status_code == 404
    assert response.json() == {"detail": "User not found"}


async def test_list_users_pages_in_id_order(client: AsyncClient) -> None:
    accounts = [await new_account(client) for _ in range(5)]
    users = [account.user for account in accounts]
    await create_item(client, accounts[2], "owned")
    response = await client.get("/users/", params={"skip": 1, "limit": 2})
    assert response.status_code == 200
    page = response.json()
    assert [u["id"] for u in page] == [users[1]["id"], users[2]["id"]]
    assert [i["title"] for i in page[1]["items"]] == ["owned"]
    everyone = (await client.get("/users/")).json()
    assert [u["id"] for u in everyone] == [u["id"] for u in users]
    assert (await client.get("/users/", params={"skip": 5})).json() == []


async def test_list_users_rejects_bad_paging(client: AsyncClient) -> None:
    for params in ({"skip": -1}, {"limit": 0}, {"limit": 101}, {"skip": "x"}, {"skip": 10**20}):
        response = await client.get("/users/", params=params)
        assert response.status_code == 422, params


async def test_list_users_pages_by_keyset_too(client: AsyncClient) -> None:
    users = [await sign_up(client) for _ in range(4)]
    page = (await client.get("/users/", params={"after": users[1]["id"], "limit": 5})).json()
    assert [u["id"] for u in page] == [users[2]["id"], users[3]["id"]]
