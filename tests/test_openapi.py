"""The OpenAPI document tells clients every error a route answers with, and its body."""

from httpx import AsyncClient

ERRORS = {
    ("post", "/auth/token"): {400, 401, 413, 422, 503},
    ("post", "/users/"): {400, 413, 422, 503},
    ("get", "/users/"): {422, 503},
    ("get", "/users/me"): {401, 503},
    ("patch", "/users/me"): {400, 401, 409, 413, 422, 503},
    ("delete", "/users/me"): {401, 503},
    ("get", "/users/{user_id}"): {404, 422, 503},
    ("post", "/users/{user_id}/items/"): {400, 401, 403, 404, 409, 413, 422, 503},
    ("get", "/items/"): {422, 503},
    ("post", "/items/"): {400, 401, 404, 409, 413, 422, 503},
    ("get", "/items/{item_id}"): {404, 422, 503},
    ("patch", "/items/{item_id}"): {400, 401, 403, 404, 409, 413, 422, 503},
    ("delete", "/items/{item_id}"): {401, 403, 404, 422, 503},
    ("get", "/health"): {503},
}
NEEDS_TOKEN = {op for op, codes in ERRORS.items() if 401 in codes and op[1] != "/auth/token"}


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
        assert len(operation["tags"]) == 1
        assert operation["tags"][0] in {"auth", "users", "items", "health"}
        assert ("security" in operation) == (op in NEEDS_TOKEN), op


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
