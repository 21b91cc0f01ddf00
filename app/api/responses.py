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
    412: "If-Match names an ETag the resource no longer has; nothing was saved",
    413: "Request body larger than MAX_BODY_SIZE",
    428: "If-Match is required (REQUIRE_IF_MATCH) and was not sent",
    429: "Too many requests; retry after Retry-After seconds",
    503: "Database unavailable or busy, or shutting down; retry (Retry-After)",
}


# Response headers a client acts on, documented on the responses that carry them.
ETAG = {
    "ETag": {
        "description": "The version shown: send it in If-Match to change the resource only "
        "if it is still at that version, or in If-None-Match to read it only if it changed",
        "required": True,
        "schema": {"type": "string"},
    }
}
REPLAYED = {
    "Idempotent-Replayed": {
        "description": "`true` when this is the recorded response to an earlier request "
        "with the same Idempotency-Key: nothing was created this time",
        "schema": {"type": "string", "enum": ["true"]},
    }
}
RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before retrying",
        "required": True,
        "schema": {"type": "integer"},
    }
}


def errors(
    *codes: int | tuple[int, str], body: bool = False, limited: bool = False
) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route, e.g. errors(401, 403, (404, "Item not found")).

    body=True adds what any route reading a body can answer: 400 for a body that
    cannot be decoded, and 413. limited=True adds 413 alone (plain text, from the
    body-size limit, which any method but GET and HEAD can meet).
    """
    out: dict[int | str, dict[str, Any]] = {}
    for entry in codes:
        code, description = entry if isinstance(entry, tuple) else (entry, DESCRIPTIONS[entry])
        out[code] = {"model": ErrorMessage, "description": description}
        if code == 412:
            out[code]["headers"] = {
                "ETag": {"description": "The resource's current ETag", "schema": {"type": "string"}}
            }
        if code in (429, 503):
            out[code]["headers"] = RETRY_AFTER
    if body:
        unreadable = "The body could not be decoded"
        out.setdefault(400, {"model": ErrorMessage, "description": unreadable})
        if out[400]["description"] != unreadable:
            out[400]["description"] += f"; or: {unreadable.lower()}"
    if body or limited:
        out[413] = {
            "description": DESCRIPTIONS[413],
            "content": {"text/plain": {"schema": {"type": "string"}}},
        }
    return out


def shown(description: str) -> dict[int | str, dict[str, Any]]:
    """`responses=` entry of a route's 200 that shows one resource, with its ETag."""
    return {200: {"description": description, "headers": ETAG}}


def created(description: str, links: dict[str, dict[str, Any]]) -> dict[int | str, dict[str, Any]]:
    """`responses=` entry of a route's 200 that creates something (with an Idempotency-Key,
    replayed to its retries): its ETag, and what the response's id leads to, as OpenAPI
    links (clients, and the fuzz run's chains, follow them)."""
    return {200: {"description": description, "headers": ETAG | REPLAYED, "links": links}}


def link(path: str, method: str, parameter: str) -> dict[str, Any]:
    """An OpenAPI link to the operation `method path`, its `parameter` the new id."""
    pointer = path.replace("~", "~0").replace("/", "~1")
    return {
        "operationRef": f"#/paths/{pointer}/{method}",
        "parameters": {parameter: "$response.body#/id"},
    }


# For changes that take If-Match.
MALFORMED_IF_MATCH = (400, "If-Match is not * or ETags in double quotes (e.g. an unquoted 2)")

# For reads that answer If-None-Match.
NOT_MODIFIED: dict[int | str, dict[str, Any]] = {
    304: {"description": "Not modified: If-None-Match holds the current ETag", "headers": ETAG}
}


def view_response(view: object) -> Response:
    """A repository view, already in the response's shape (plain dicts and lists),
    serialised with orjson. Entities go through the route's response model instead;
    views skip that second validation, and the tests pin their shape."""
    return Response(orjson.dumps(view), media_type="application/json")
