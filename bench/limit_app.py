"""The ceiling: a bare ASGI app on an asyncpg pool serving GET /users/{id}
with the same JSON shape as the seed (user with its items). No framework,
no ORM, no validation: what Python + asyncpg + uvicorn can do at best."""

import os

import asyncpg
import orjson

DSN = os.environ.get("PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")
pool = None

USER_SQL = "SELECT id, email, is_active FROM users WHERE id = $1"
ITEMS_SQL = "SELECT id, title, description, owner_id FROM items WHERE owner_id = $1 ORDER BY id"


async def app(scope, receive, send):
    global pool
    if scope["type"] == "lifespan":
        while True:
            msg = await receive()
            if msg["type"] == "lifespan.startup":
                pool = await asyncpg.create_pool(DSN, min_size=5, max_size=20)
                await send({"type": "lifespan.startup.complete"})
            elif msg["type"] == "lifespan.shutdown":
                await pool.close()
                await send({"type": "lifespan.shutdown.complete"})
                return
    path = scope["path"]
    status, body = 404, b'{"detail":"Not Found"}'
    if path.startswith("/users/"):
        try:
            uid = int(path[len("/users/") :])
        except ValueError:
            uid = None
        if uid is not None:
            async with pool.acquire() as con:
                row = await con.fetchrow(USER_SQL, uid)
                if row is None:
                    body = b'{"detail":"User not found"}'
                else:
                    items = await con.fetch(ITEMS_SQL, uid)
                    status = 200
                    body = orjson.dumps({**dict(row), "items": [dict(i) for i in items]})
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body})
