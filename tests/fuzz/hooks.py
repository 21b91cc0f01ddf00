"""Authentication for the fuzz run: schemathesis loads this module (schemathesis.toml).

Every operation is called with a bearer token, so the protected routes validate what
the fuzzer sends instead of answering 401 before looking at it:

- /users/me with the token of an account of its own, signed up for the run. When the
  run deletes that account (DELETE /users/me), the next call gets 401; schemathesis then
  asks for a token again (a new account) and repeats the call.
- every other operation with a superuser's token (created by the runner with
  `python -m app.cli create-superuser`), so that chains such as POST /users/ ->
  POST /users/{user_id}/items/ get past the permission check. It never reaches
  /users/me, where the run would change or delete it.
"""

import itertools
import os
from typing import Any

import schemathesis
from schemathesis import AuthContext, Case
from schemathesis.schemas import BaseSchema

ACCOUNT_PASSWORD = "fuzz-account-password"
ADMIN_EMAIL = os.environ["FUZZ_ADMIN_EMAIL"]
ADMIN_PASSWORD = os.environ["FUZZ_ADMIN_PASSWORD"]
# Numbered, not random: the run's requests (and what it learns from the responses) are
# the same on every run.
ACCOUNTS = itertools.count(1)


def _token(schema: BaseSchema, email: str, password: str) -> str:
    response = (
        schema["/auth/token"]["POST"]
        .Case(
            body={"username": email, "password": password},
            media_type="application/x-www-form-urlencoded",
        )
        .call()
    )
    assert response.status_code == 200, (response.status_code, response.text)
    token: str = response.json()["access_token"]
    return token


def _bearer(case: Case[Any], token: str) -> None:
    case.headers["Authorization"] = f"Bearer {token}"


@schemathesis.auth(refresh_interval=600).skip_for(path="/users/me")
class SuperuserToken:
    def get(self, case: Case[Any], ctx: AuthContext) -> str:
        return _token(case.operation.schema, ADMIN_EMAIL, ADMIN_PASSWORD)

    def set(self, case: Case[Any], data: str, ctx: AuthContext) -> None:
        _bearer(case, data)


@schemathesis.auth(refresh_interval=600)  # tokens live 30 minutes: one log-in per account
class OwnAccountToken:
    def get(self, case: Case[Any], ctx: AuthContext) -> str:
        schema = case.operation.schema
        email = f"fuzz-account-{next(ACCOUNTS)}@example.com"
        response = (
            schema["/users/"]["POST"]
            .Case(
                body={"email": email, "password": ACCOUNT_PASSWORD}, media_type="application/json"
            )
            .call()
        )
        assert response.status_code == 200, (response.status_code, response.text)
        return _token(schema, email, ACCOUNT_PASSWORD)

    def set(self, case: Case[Any], data: str, ctx: AuthContext) -> None:
        _bearer(case, data)
