"""Password hashing is slow by design; it must not be slow for anybody else."""

import asyncio

from app.main import create_app
from tests.databases import Database, make_settings, serve
from tests.helpers import PASSWORD, sign_up, unique_email


async def test_other_requests_are_served_while_a_sign_up_hashes(database: Database) -> None:
    async with serve(create_app(make_settings(database.url, real_hashing=True))) as client:
        user = await sign_up(client)
        sign_up_request = asyncio.create_task(
            client.post("/users/", json={"email": unique_email(), "password": PASSWORD})
        )
        served_meanwhile = 0
        while not sign_up_request.done():
            response = await client.get(f"/users/{user['id']}")
            assert response.status_code == 200
            served_meanwhile += 1
        assert (await sign_up_request).status_code == 200
        # Hashing on the event loop would let at most a couple through, before and after
        # the hash; in a worker thread, reads keep flowing for the whole ~0.1 s.
        assert served_meanwhile >= 10, served_meanwhile
