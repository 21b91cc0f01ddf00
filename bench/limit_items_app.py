"""Ceiling for GET /items/?skip=&limit=: bare ASGI, asyncpg, one query, orjson. No framework."""

import os
from urllib.parse import parse_qs

import asyncpg
import orjson

DSN = os.environ.get("PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")
pool = None
SQL = "SELECT title, description, id, owner_id FROM items ORDER BY id OFFSET $1 LIMIT $2"


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
    q = parse_qs(scope["query_string"].decode())
    rows = await pool.fetch(SQL, int(q.get("skip", ["0"])[0]), int(q.get("limit", ["100"])[0]))
    body = orjson.dumps([dict(r) for r in rows])
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body})
