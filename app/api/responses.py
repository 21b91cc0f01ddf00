"""How responses are built and documented.

Routes return responses built here, from views already in the response's shape (plain
dicts and lists, app.domain.schemas), serialised with orjson: the route's response model
documents them in OpenAPI and is not run again on every response (the tests pin that the
two agree).

Conditional requests: strong ETags on every response that shows one item or one user,
If-None-Match on reads (304), If-Match on changes (412; app.api.dependencies parses it).
An item's ETag is its version (`"3"`), which every change increments: the write
statement itself checks If-Match. A user's representation holds its items too, so its
ETag is a digest of the response's bytes. A malformed If-None-Match is ignored, as RFC
9110 lets a server do: the read answers in full, which is never wrong.

Documented errors: every status a route can answer with, and its body (`errors`).
"""

import base64
import hashlib
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import orjson
from fastapi import Request, Response

from app.domain.repositories.common import PageOfViews
from app.domain.schemas import ErrorMessage, ViewDict, item_etag

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
CONSISTENCY_TOKEN = {
    "Consistency-Token": {
        "description": "With read replicas: send it with your next requests (the Python "
        "client does so by itself), and your reads never see data older than this write",
        "schema": {"type": "string"},
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


# What the next page's link leaves out of the request's query: it has its own `after`.
PAGING = ("skip", "after")


def listed(description: str) -> dict[int | str, dict[str, Any]]:
    """`responses=` entry of a list route's 200: a plain array, and the next page's link."""
    link_header = {
        "description": 'RFC 8288: `<url>; rel="next"`, the next page (keyset `after=`, '
        "the same filters and `limit`, no `skip`). Absent on the last page.",
        "schema": {"type": "string"},
    }
    return {200: {"description": description, "headers": {"Link": link_header}}}


def changed(description: str) -> dict[int | str, dict[str, Any]]:
    """`responses=` entry of a route's 200 that shows a resource it changed: its ETag,
    and the write's Consistency-Token."""
    return {200: {"description": description, "headers": ETAG | CONSISTENCY_TOKEN}}


def deleted(description: str) -> dict[int | str, dict[str, Any]]:
    """`responses=` entry of a route's 204: the write's Consistency-Token."""
    return {204: {"description": description, "headers": CONSISTENCY_TOKEN}}


def created(description: str, links: dict[str, dict[str, Any]]) -> dict[int | str, dict[str, Any]]:
    """`responses=` entry of a route's 200 that creates something (with an Idempotency-Key,
    replayed to its retries): its ETag, and what the response's id leads to, as OpenAPI
    links (clients, and the fuzz run's chains, follow them)."""
    headers = ETAG | REPLAYED | CONSISTENCY_TOKEN
    return {200: {"description": description, "headers": headers, "links": links}}


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


def page_response(page: PageOfViews, request: Request) -> Response:
    """A page of a list, with a Link to the next page unless it is the last. The link is
    relative (path and query), so that it stays right behind proxies that change the host
    or the scheme; it keeps the request's filters and `limit`, and starts after the page's
    last id instead of skipping (keyset: the same cost at any depth)."""
    response = view_response(page.views)
    if page.next_after is not None:
        # From the query parameters the route has parsed already: Starlette's URL
        # methods would parse and split the whole URL again.
        query = [pair for pair in request.query_params.multi_items() if pair[0] not in PAGING]
        query.append(("after", str(page.next_after)))
        response.headers["link"] = f'<{request.scope["path"]}?{urlencode(query)}>; rel="next"'
    return response


# Conditional requests


@dataclass(frozen=True, slots=True)
class EntityTags:
    """The entity tags of an If-Match or If-None-Match header (`*`: any)."""

    any: bool
    tags: frozenset[str]

    def match(self, etag: str, *, weak: bool) -> bool:
        """Strong comparison (If-Match) ignores weak tags; weak (If-None-Match) strips W/."""
        if self.any:
            return True
        if weak:
            return etag in self.tags or f"W/{etag}" in self.tags
        return etag in self.tags

    def item_versions(self) -> list[int] | None:
        """The item versions these strong tags name (None: any version)."""
        if self.any:
            return None
        return [int(tag[1:-1]) for tag in self.tags if tag[1:-1].isdigit() and tag[1:-1].isascii()]


# RFC 9110: an entity tag is an opaque string in double quotes, W/ before a weak one; a
# list of them is separated by commas, with optional whitespace and empty elements.
# Each part of the list pattern can match a given text in one way only, so a text
# that is no list fails at once (no backtracking).
_ENTITY_TAG = r'(?:W/)?"[\x21\x23-\x7e\x80-\xff]*"'
_ENTITY_TAGS = re.compile(_ENTITY_TAG)
_ENTITY_TAG_LIST = re.compile(
    rf"[ \t]*(?:{_ENTITY_TAG}[ \t]*)?(?:,[ \t]*(?:{_ENTITY_TAG}[ \t]*)?)*"
)


def entity_tags(header: str) -> EntityTags | None:
    """The header's entity tags; None unless it is `*` or a list of at least one."""
    if header.strip(" \t") == "*":
        return EntityTags(any=True, tags=frozenset())
    if _ENTITY_TAG_LIST.fullmatch(header) is None:
        return None
    tags = frozenset(_ENTITY_TAGS.findall(header))
    return EntityTags(any=False, tags=tags) if tags else None


def _digest_etag(body: bytes) -> str:
    digest = hashlib.blake2b(body, digest_size=15).digest()
    return f'"{base64.urlsafe_b64encode(digest).decode()}"'


def _conditional(body: bytes, etag: str, if_none_match: str | None) -> Response:
    held = entity_tags(if_none_match) if if_none_match is not None else None
    if held is not None and held.match(etag, weak=True):
        return Response(status_code=304, headers={"ETag": etag})
    return Response(body, media_type="application/json", headers={"ETag": etag})


def item_response(item: ViewDict, if_none_match: str | None = None) -> Response:
    """One item, with its ETag (304 when If-None-Match holds it)."""
    return _conditional(orjson.dumps(item), item_etag(item), if_none_match)


def user_etag(user: ViewDict) -> str:
    return _digest_etag(orjson.dumps(user))


def user_response(user: ViewDict, if_none_match: str | None = None) -> Response:
    """One user with its items, with its ETag (304 when If-None-Match holds it)."""
    body = orjson.dumps(user)
    return _conditional(body, _digest_etag(body), if_none_match)
