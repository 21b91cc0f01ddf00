"""Documented error responses: every status a route can answer with, and its body."""

from typing import Any

import orjson
from fastapi import Response

from app.schemas import ErrorMessage

DESCRIPTIONS = {
    400: "The request cannot be carried out as sent",
    401: "Missing, malformed, expired or revoked token (WWW-Authenticate: Bearer)",
    403: "The token's user may not change this resource",
    404: "Not found",
    409: "Conflicted with data written concurrently; nothing was saved",
    413: "Request body larger than MAX_BODY_SIZE",
    503: "Database unavailable; retry (Retry-After)",
}


def errors(*codes: int | tuple[int, str], body: bool = False) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route, e.g. errors(401, 403, (404, "Item not found")).

    body=True adds what any route reading a body can answer: 400 for a body that
    cannot be decoded, 413 (plain text, from the body-size limit) for one too large.
    """
    out: dict[int | str, dict[str, Any]] = {}
    for entry in codes:
        code, description = entry if isinstance(entry, tuple) else (entry, DESCRIPTIONS[entry])
        out[code] = {"model": ErrorMessage, "description": description}
    if body:
        unreadable = "The body could not be decoded"
        out.setdefault(400, {"model": ErrorMessage, "description": unreadable})
        if out[400]["description"] != unreadable:
            out[400]["description"] += f"; or: {unreadable.lower()}"
        out[413] = {
            "description": DESCRIPTIONS[413],
            "content": {"text/plain": {"schema": {"type": "string"}}},
        }
    return out


def view_response(view: object) -> Response:
    """A repository view, already in the response's shape (plain dicts and lists),
    serialised with orjson. Entities go through the route's response model instead;
    views skip that second validation, and the tests pin their shape."""
    return Response(orjson.dumps(view), media_type="application/json")
