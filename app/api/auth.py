from typing import Annotated

from fastapi import APIRouter, Form

from app.api.deps import Passwords, Tokens, Users
from app.api.responses import errors
from app.errors import InactiveUser, IncorrectLogin
from app.schemas import LoginForm, Token, normalized_email

router = APIRouter(prefix="/auth", tags=["auth"], responses=errors(503))


@router.post(
    "/token",
    responses=errors((400, "Inactive user"), (401, "Incorrect email or password"), body=True),
)
async def log_in(
    form: Annotated[LoginForm, Form()], users: Users, passwords: Passwords, tokens: Tokens
) -> Token:
    """OAuth2 password flow: `username` is the account's email. Returns a bearer token."""
    async with passwords.turn() as hashing:  # the user is loaded once it is our turn
        user = await users.get_by_email(normalized_email(form.username))
        matches, new_hash = await hashing.verify(
            form.password, user.hashed_password if user else None
        )
    if user is None or not matches:
        raise IncorrectLogin
    if not user.is_active:
        raise InactiveUser
    if new_hash is not None:  # the hashing parameters changed since it was stored
        user.hashed_password = new_hash
        await users.save(user)
    return Token(access_token=tokens.issue(user.id))
