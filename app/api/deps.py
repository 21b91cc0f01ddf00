"""What routes depend on, as `Annotated` aliases named for what the route receives.

The functions behind them live with what they are about: the units of work in
app.db and app.idempotency, the services in app.services, conditional requests in
app.api.conditional. The bearer token's reading is here: only the API needs it.
"""

from typing import Annotated

from fastapi import Depends, Path, Query, Request
from fastapi.requests import HTTPConnection
from fastapi.security import OAuth2PasswordBearer

from app import db, idempotency, schemas, security
from app.api import conditional
from app.errors import NotAuthenticated
from app.security import InvalidToken, PasswordHasher, TokenIssuer
from app.services import services
from app.throttle import LoginThrottle

# The unit of work, one per route (see app.db). scope="function": the session
# closes, and a transaction commits, before the response is sent.
ReadSession = Annotated[db.ReadSession, Depends(db.read_session, scope="function")]
SingleWrite = Annotated[db.SingleWrite, Depends(db.single_write, scope="function")]
Transaction = Annotated[db.Transaction, Depends(db.transaction, scope="function")]
# A SingleWrite that an Idempotency-Key makes safe to retry (app.idempotency).
IdempotentWrite = Annotated[
    idempotency.IdempotentWrite, Depends(idempotency.idempotent_write, scope="function")
]


async def _password_hasher(request: Request) -> PasswordHasher:
    return services(request).passwords


async def _token_issuer(request: Request) -> TokenIssuer:
    return services(request).tokens


async def _login_throttle(request: Request) -> LoginThrottle:
    return services(request).throttle


async def _client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


Passwords = Annotated[PasswordHasher, Depends(_password_hasher)]
Tokens = Annotated[TokenIssuer, Depends(_token_issuer)]
LoginThrottling = Annotated[LoginThrottle, Depends(_login_throttle)]
# The client's address: a proxy's X-Forwarded-For, when it is one of TRUSTED_PROXIES.
ClientAddress = Annotated[str, Depends(_client_address)]

Page = Annotated[schemas.Page, Query()]
UserId = Annotated[schemas.Id, Path(description="A user's id.")]
ItemId = Annotated[schemas.Id, Path(description="An item's id.")]
IfMatch = Annotated[conditional.EntityTags | None, Depends(conditional.if_match)]
IfNoneMatch = Annotated[str | None, conditional.IF_NONE_MATCH]  # default None


class _BearerScheme(OAuth2PasswordBearer):
    """OAuth2's bearer scheme, as FastAPI's: 401 with WWW-Authenticate: Bearer when the
    header is missing, and /docs logs in through POST /auth/token. It reads the token
    too: one dependency where a reader depending on the scheme would be two (solving
    one costs about 6% of a request, counted in instructions)."""

    async def __call__(self, request: HTTPConnection) -> security.Bearer:  # type: ignore[override]
        token = await super().__call__(request)
        if token is None:  # not with auto_error, which answers 401 first
            raise NotAuthenticated
        try:
            bearer = services(request).tokens.bearer(token)
        except InvalidToken:
            raise NotAuthenticated from None
        request.state.user_id = bearer.user_id  # for the access log
        return bearer


# Named in OpenAPI as FastAPI's own scheme is.
_BEARER_SCHEME = _BearerScheme(tokenUrl="/auth/token", scheme_name="OAuth2PasswordBearer")
# Who a valid bearer token names (401 without one). Nothing is loaded: whether
# that user may act is app.policy's question, asked by the route in its own unit
# of work (in SQL, or of the loaded account).
Bearer = Annotated[security.Bearer, Depends(_BEARER_SCHEME)]
