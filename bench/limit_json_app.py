"""A higher ceiling than limit_app.py: bare ASGI on an asyncpg pool, ONE
round trip per GET /users/{id}, the JSON built by PostgreSQL and passed through as
bytes. No framework, no ORM, no validation, no Python-side serialisation."""

import os

import asyncpg

DSN = os.environ.get("PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")
pool = None
SQL = """SELECT json_build_object('email', u.email, 'id', u.id, 'is_active', u.is_active,
  'items', coalesce((SELECT json_agg(json_build_object('title', i.title,
    'description', i.description, 'id', i.id, 'owner_id', i.owner_id) ORDER BY i.id)
    FROM items i WHERE i.owner_id = u.id), '[]'))::text
  FROM users u WHERE u.id = $1"""


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
            text = await pool.fetchval(SQL, uid)
            if text is None:
                body = b'{"detail":"User not found"}'
            else:
                status, body = 200, text.encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body})
