"""The OpenAPI document tells clients every error a route answers with, and its body."""

import asyncio
import json
import os
import sys
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute
from httpx import AsyncClient
from starlette.routing import Mount, Route

from app.api import auth, health, items, metrics, users
from app.domain.schemas import NO_NUL
from tests.databases import PROJECT_ROOT

ERRORS = {
    ("post", "/auth/token"): {400, 401, 413, 422, 429, 503},
    ("post", "/users/"): {400, 409, 413, 422, 429, 503},
    ("get", "/users/"): {422, 503},
    ("get", "/users/me"): {401, 422, 503},
    ("patch", "/users/me"): {400, 401, 404, 409, 412, 413, 422, 428, 429, 503},
    ("delete", "/users/me"): {400, 401, 404, 412, 413, 422, 428, 503},
    ("get", "/users/{user_id}"): {404, 422, 503},
    ("post", "/users/{user_id}/items/"): {400, 401, 403, 404, 409, 413, 422, 503},
    ("get", "/items/"): {422, 503},
    ("post", "/items/"): {400, 401, 404, 409, 413, 422, 503},
    ("get", "/items/{item_id}"): {404, 422, 503},
    ("patch", "/items/{item_id}"): {400, 401, 403, 404, 409, 412, 413, 422, 428, 503},
    ("delete", "/items/{item_id}"): {400, 401, 403, 404, 409, 412, 413, 422, 428, 503},
    ("get", "/health"): {503},
    ("get", "/health/ready"): {503},
    ("get", "/health/live"): set(),
}
# The operation ids, which generated clients name their functions after (`items_update`):
# part of the API, set on each route, so that renaming or moving code changes none.
OPERATION_IDS = {
    ("post", "/auth/token"): "auth-log-in",
    ("post", "/users/"): "users-create",
    ("get", "/users/"): "users-list",
    ("get", "/users/me"): "users-read-me",
    ("patch", "/users/me"): "users-update-me",
    ("delete", "/users/me"): "users-delete-me",
    ("get", "/users/{user_id}"): "users-read",
    ("post", "/users/{user_id}/items/"): "users-create-item",
    ("get", "/items/"): "items-list",
    ("post", "/items/"): "items-create",
    ("get", "/items/{item_id}"): "items-read",
    ("patch", "/items/{item_id}"): "items-update",
    ("delete", "/items/{item_id}"): "items-delete",
    ("get", "/health"): "health-ready-alias",
    ("get", "/health/ready"): "health-ready",
    ("get", "/health/live"): "health-live",
}
# The responses that carry headers a client acts on, documented so that clients and the
# docs know them: ETag wherever one item or one user is shown, Idempotent-Replayed where
# a retry can be a replay, Retry-After with every 429 and 503.
SHOWS_ONE = {
    ("post", "/users/"),
    ("get", "/users/me"),
    ("patch", "/users/me"),
    ("get", "/users/{user_id}"),
    ("post", "/users/{user_id}/items/"),
    ("post", "/items/"),
    ("get", "/items/{item_id}"),
    ("patch", "/items/{item_id}"),
}
# Lists: their pages link to the next (Link).
LISTS = {("get", "/users/"), ("get", "/items/")}
REPLAYABLE = {("post", "/users/"), ("post", "/users/{user_id}/items/"), ("post", "/items/")}
# Writes: their responses carry a Consistency-Token (with read replicas).
WRITES = REPLAYABLE | {
    ("patch", "/items/{item_id}"),
    ("delete", "/items/{item_id}"),
    ("patch", "/users/me"),
    ("delete", "/users/me"),
    ("post", "/auth/token"),
}
# Reads that a replica may answer: they take a Consistency-Token.
REPLICA_READS = {
    ("get", "/users/"),
    ("get", "/users/{user_id}"),
    ("get", "/items/"),
    ("get", "/items/{item_id}"),
}
NEEDS_TOKEN = {op for op, codes in ERRORS.items() if 401 in codes and op[1] != "/auth/token"}
# What the server answers that is not an operation: the document and the docs (app/api/docs.py).
NOT_OPERATIONS = {
    "/openapi.json",
    "/docs",
    "/docs/oauth2-redirect",
    "/docs/assets",  # the docs' scripts, styles, icons and their licences
    "/redoc",
    "/redoc/logo-mini.svg",
    "/metrics",  # Prometheus' text format, for scrapers
}


async def test_every_route_documents_its_errors_and_their_bodies(client: AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    operations = {
        (method, path): operation
        for path, methods in spec["paths"].items()
        for method, operation in methods.items()
    }
    assert operations.keys() == ERRORS.keys()
    for op, operation in operations.items():
        errors = {int(code) for code in operation["responses"] if int(code) >= 400}
        assert errors == ERRORS[op], op
        for code in errors - {413}:  # 413 is plain text, from the body-size limit
            schema = operation["responses"][str(code)]["content"]["application/json"]["schema"]
            expected = "HTTPValidationError" if code == 422 else "ErrorMessage"
            assert schema == {"$ref": f"#/components/schemas/{expected}"}, (op, code)
        if 412 in errors:  # it names the resource's current ETag
            assert "ETag" in operation["responses"]["412"]["headers"], op
        assert len(operation["tags"]) == 1
        assert operation["tags"][0] in {"auth", "users", "items", "health"}
        assert ("security" in operation) == (op in NEEDS_TOKEN), op


def test_only_the_document_and_the_docs_are_left_out_of_it(app: FastAPI) -> None:
    for router in (users.router, items.router, auth.router, health.router):
        for route in router.routes:
            assert isinstance(route, APIRoute), route
            assert route.include_in_schema, route.path
    left_out = {
        route.path
        for route in app.routes  # the routers included appear as one entry each: not a Route
        if isinstance(route, Mount) or (isinstance(route, Route) and not route.include_in_schema)
    } | {route.path for route in metrics.router.routes if isinstance(route, APIRoute)}
    assert all(not route.include_in_schema for route in metrics.router.routes)  # type: ignore[attr-defined]
    assert left_out == NOT_OPERATIONS


async def test_operation_ids_are_the_pinned_ones(client: AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    operation_ids = {
        (method, path): operation["operationId"]
        for path, methods in spec["paths"].items()
        for method, operation in methods.items()
    }
    assert operation_ids == OPERATION_IDS


async def test_the_headers_clients_act_on_are_documented(client: AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    for path, methods in spec["paths"].items():
        for method, operation in methods.items():
            op = (method, path)
            documented = {
                code: set(response.get("headers", {}))
                for code, response in operation["responses"].items()
            }
            expected_200 = {"ETag"} if op in SHOWS_ONE else set()
            if op in REPLAYABLE:
                expected_200.add("Idempotent-Replayed")
            if op in LISTS:
                expected_200.add("Link")
            success = "204" if method == "delete" else "200"
            if op in WRITES:
                assert "Consistency-Token" in documented[success], op
                documented[success].discard("Consistency-Token")
            assert documented.get("200", set()) == expected_200, op
            takes_token = any(
                parameter["in"] == "header" and parameter["name"] == "consistency-token"
                for parameter in operation.get("parameters", [])
            )
            assert takes_token == (op in REPLICA_READS), op
            if "304" in documented:
                assert documented["304"] == {"ETag"}, op
            for code in ("429", "503"):
                if code in documented:
                    assert documented[code] == {"Retry-After"}, (op, code)
                    header = operation["responses"][code]["headers"]["Retry-After"]
                    assert header["required"] is True
            if "ETag" in documented.get("200", set()):
                assert operation["responses"]["200"]["headers"]["ETag"]["required"] is True


async def test_python_m_app_openapi_prints_the_document_without_a_server(
    client: AsyncClient,
) -> None:
    # What clients are generated from: the document /openapi.json serves, though the
    # database named cannot be reached.
    unreachable = "postgresql+asyncpg://nobody@127.0.0.1:1/nothing"
    printing = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "app.openapi",
        cwd=PROJECT_ROOT,
        env={**os.environ, "DATABASE_URL": unreachable},
        stdout=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(60):
        printed, _ = await printing.communicate()
    assert printing.returncode == 0
    assert json.loads(printed) == (await client.get("/openapi.json")).json()


async def test_docs_can_log_in_with_the_password_flow(client: AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    schemes = spec["components"]["securitySchemes"]
    assert schemes["OAuth2PasswordBearer"]["flows"]["password"]["tokenUrl"] == "/auth/token"
    assert (await client.get("/docs")).status_code == 200


async def test_the_schema_says_what_patch_bodies_accept(client: AsyncClient) -> None:
    schemas = (await client.get("/openapi.json")).json()["components"]["schemas"]
    # Fields that may be left out, but not sent as null.
    assert schemas["ItemUpdate"]["properties"]["title"]["type"] == "string"
    assert schemas["UserUpdate"]["properties"]["email"]["type"] == "string"
    assert schemas["UserUpdate"]["dependentRequired"] == {"password": ["current_password"]}


def _resolved(schema: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in schema:
        resolved: dict[str, Any] = spec["components"]["schemas"][schema["$ref"].split("/")[-1]]
        return resolved
    return schema


def _string_schemas(schema: dict[str, Any], spec: dict[str, Any]) -> list[dict[str, Any]]:
    schema = _resolved(schema, spec)
    if "anyOf" in schema:
        return [s for member in schema["anyOf"] for s in _string_schemas(member, spec)]
    return [schema] if schema.get("type") == "string" else []


async def test_the_schema_says_text_must_not_contain_nul(client: AsyncClient) -> None:
    # Both databases refuse NUL: a schema without the rule would call text valid that
    # the API refuses (found by the fuzz run).
    spec = (await client.get("/openapi.json")).json()
    text: set[str] = set()
    for methods in spec["paths"].values():
        for operation in methods.values():
            fields = [
                (parameter["name"], parameter["schema"])
                for parameter in operation.get("parameters", [])
                if parameter["in"] in ("query", "path")  # headers cannot hold NUL at all
            ]
            for content in operation.get("requestBody", {}).get("content", {}).values():
                fields += _resolved(content["schema"], spec).get("properties", {}).items()
            for name, schema in fields:
                for string in _string_schemas(schema, spec):
                    if "format" in string or "const" in string:
                        continue  # emails; OAuth2's grant_type
                    assert string.get("pattern") == NO_NUL, (operation["operationId"], name)
                    text.add(name)
    expected = {"title", "description", "password", "current_password", "username", "scope", "q"}
    assert text == expected


NEW_RESOURCE_LINKS = {
    ("/users/", "GetUser"): ("/users/{user_id}", "get", "user_id"),
    ("/users/", "CreateItemForUser"): ("/users/{user_id}/items/", "post", "user_id"),
    **{
        (path, f"{method.title()}Item"): ("/items/{item_id}", method, "item_id")
        for path in ("/items/", "/users/{user_id}/items/")
        for method in ("get", "patch", "delete")
    },
}


async def test_new_resources_link_to_the_operations_their_id_is_for(client: AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    links = {
        (path, name): link
        for path, methods in spec["paths"].items()
        for operation in methods.values()
        for name, link in operation["responses"].get("200", {}).get("links", {}).items()
    }
    assert links.keys() == NEW_RESOURCE_LINKS.keys()
    for key, (path, method, parameter) in NEW_RESOURCE_LINKS.items():
        link = links[key]
        assert link["parameters"] == {parameter: "$response.body#/id"}, key
        pointer = link["operationRef"].removeprefix("#/paths/")
        target_path, target_method = pointer.rsplit("/", 1)
        assert (target_path.replace("~1", "/"), target_method) == (path, method), key
        target = spec["paths"][path][method]
        assert parameter in {p["name"] for p in target["parameters"] if p["in"] == "path"}, key
