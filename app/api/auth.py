"""Log in (OAuth2 password flow) for a bearer token."""

from typing import Annotated, Any

from fastapi import APIRouter, Form

from app.api.dependencies import (
    ClientAddressDep,
    PasswordsDep,
    ThrottleDep,
    TokensDep,
    TransactionDep,
)
from app.api.responses import CONSISTENCY_TOKEN, errors
from app.domain.repositories.users import UserRepository
from app.domain.schemas import LoginForm, Token, normalized_email
from app.platform.errors import InactiveUser, IncorrectLogin

router = APIRouter(prefix="/auth", tags=["auth"], responses=errors(503))
LOGGED_IN: dict[int | str, dict[str, Any]] = {
    200: {"description": "A bearer token", "headers": CONSISTENCY_TOKEN}
}


@router.post(
    "/token",
    operation_id="auth-log-in",
    responses=LOGGED_IN
    | errors((400, "Inactive user"), (401, "Incorrect email or password"), 429, body=True),
)
async def log_in(
    form: Annotated[LoginForm, Form()],
    tx: TransactionDep,
    passwords: PasswordsDep,
    tokens: TokensDep,
    throttle: ThrottleDep,
    address: ClientAddressDep,
) -> Token:
    """OAuth2 password flow: `username` is the account's email. Returns a bearer token.
    Repeated failures for an account or from an address get 429 for a while."""
    email = normalized_email(form.username)
    had_failures = await throttle.check(email, address)
    users = UserRepository(tx)
    async with passwords.turn(address) as hashing:  # the user is loaded in our turn
        user = await users.get_by_email(email)
        matches, new_hash = await hashing.verify(
            form.password, user.hashed_password if user else None
        )
    if user is None or not matches:
        await throttle.failed(email, address)
        raise IncorrectLogin
    if had_failures:
        await throttle.succeeded(email)
    if not user.is_active:
        raise InactiveUser
    if new_hash is not None:  # the hashing parameters changed since it was stored
        user.hashed_password = new_hash
        await users.save(user)
    return Token(access_token=tokens.issue(user.id, user.token_version))
