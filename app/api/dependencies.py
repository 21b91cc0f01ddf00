"""What a route depends on, named in its signature: the app's typed state (read here and
nowhere else), the unit of work, who asks, and the services a request may use.

Dependencies are `Annotated` aliases whose names end in `Dep`; parameters read from the
request itself (path, query, headers) are named for what they are (`ItemId`, `PageQuery`,
`IfNoneMatch`).

Authorisation is judged in one order for every route: who asks (`BearerDep`: a valid
token, else 401), what exists (404), whose it is (403), which version (`If-Match`, 412).
The caller's own account comes through `MyAccountDep` / `MyAccountViewDep`, which check
the token against the account in the database (deleted, deactivated, revoked: 401). A
write of an item carries the same rule inside its one statement (app.domain.policy), so
check and write are atomic; when it is refused, app.domain.refusals says why, in the
same order.
"""

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Header, Path, Query, Request
from fastapi.openapi.models import OAuth2 as OAuth2Model
from fastapi.openapi.models import OAuthFlows as OAuthFlowsModel
from fastapi.requests import HTTPConnection
from fastapi.security.base import SecurityBase
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from app.api.responses import EntityTags, entity_tags, user_etag
from app.domain import policy
from app.domain.repositories.users import Target, UserRepository, UserViews
from app.domain.schemas import Id, Page, ViewDict
from app.domain.security import Bearer, InvalidToken, PasswordHasher, TokenIssuer
from app.domain.throttle import LoginThrottle
from app.platform.batching import Coalescer
from app.platform.errors import (
    MalformedIfMatch,
    NotAuthenticated,
    PreconditionFailed,
    PreconditionRequired,
    UserNotFound,
)
from app.platform.metrics import Metrics
from app.platform.models import User
from app.platform.readiness import Readiness
from app.platform.replicas import Replicas
from app.platform.sessions import ReadSession, ReplicaRead, Sessions, SingleWrite, Transaction
from app.platform.settings import Settings

# The app's state


@dataclass(frozen=True, slots=True)
class AppState:
    """What the app's lifespan builds (app.main) and requests use; lives as long as the
    process serves."""

    settings: Settings
    engine: AsyncEngine
    sessions: Sessions
    passwords: PasswordHasher
    tokens: TokenIssuer
    throttle: LoginThrottle
    # Where reads that a replica may serve go (all to the primary without replicas).
    replicas: Replicas
    # Users with their items by (where to read, id): concurrent look-ups answered by
    # one query.
    user_views: Coalescer[tuple[Target, int], ViewDict]
    readiness: Readiness
    metrics: Metrics | None  # None when METRICS_ENABLED is false

    def sample_metrics(self) -> None:
        """Set the gauges that describe this process now (its pool, its hashing queue,
        its connections)."""
        if self.metrics is not None:
            self.metrics.sample(self.engine.pool, self.passwords.queue_length)


def state_of(app: Starlette) -> AppState:
    """The running app's state (its lifespan sets it)."""
    found: AppState = app.state.app_state
    return found


def app_state(connection: HTTPConnection) -> AppState:
    return state_of(connection.app)


# What a client's last write answered: its reads never see older data (app.platform.replicas).
ConsistencyTokenHeader = Annotated[
    str | None,
    Header(
        max_length=200,
        description="The Consistency-Token of your last write's response: this read sees "
        "at least what that write left (without it, a replica may answer a little behind).",
    ),
]


# The unit of work, one per route (app.platform.sessions). With scope="function", FastAPI
# runs the code after `yield` once the route has returned and its response has been
# serialised, but before a byte of it is sent: a transaction commits first, and when the
# commit fails the client gets an error status instead of a 2xx. Anything the route
# raises rolls it back. The default scope would commit after the response was sent.


async def read_session(request: Request) -> AsyncIterator[ReadSession]:
    async with app_state(request).sessions.read() as session:
        yield session


async def replica_read(
    request: Request, consistency_token: ConsistencyTokenHeader = None
) -> AsyncIterator[ReplicaRead]:
    replicas = app_state(request).replicas
    async with replicas.read(replicas.choose(consistency_token).replica) as session:
        yield session


async def single_write(request: Request) -> AsyncIterator[SingleWrite]:
    state = app_state(request)
    async with state.sessions.single_write() as session:
        yield session
    await written(request)


async def transaction(request: Request) -> AsyncIterator[Transaction]:
    state = app_state(request)
    async with state.sessions.transaction() as session:
        yield session
    await written(request)


async def written(request: Request) -> None:
    """After a write has committed: with replicas, the Consistency-Token its response
    carries (app.api.middleware adds it)."""
    replicas = app_state(request).replicas
    if replicas.configured:
        request.state.consistency_token = await replicas.token_after_write()


ReadSessionDep = Annotated[ReadSession, Depends(read_session, scope="function")]
# A read that a streaming replica may serve (app.platform.replicas): public reads.
ReplicaReadDep = Annotated[ReplicaRead, Depends(replica_read, scope="function")]
SingleWriteDep = Annotated[SingleWrite, Depends(single_write, scope="function")]
TransactionDep = Annotated[Transaction, Depends(transaction, scope="function")]


# What a request may use besides its unit of work.


async def _password_hasher(request: Request) -> PasswordHasher:
    return app_state(request).passwords


async def _token_issuer(request: Request) -> TokenIssuer:
    return app_state(request).tokens


async def _login_throttle(request: Request) -> LoginThrottle:
    return app_state(request).throttle


async def _user_views(
    request: Request, consistency_token: ConsistencyTokenHeader = None
) -> UserViews:
    state = app_state(request)
    return UserViews(state.user_views, state.replicas.choose(consistency_token).replica)


async def _readiness(request: Request) -> Readiness:
    return app_state(request).readiness


async def _replicas(request: Request) -> Replicas:
    return app_state(request).replicas


async def _metrics(request: Request) -> Metrics | None:
    state = app_state(request)
    state.sample_metrics()
    return state.metrics


async def _settings(request: Request) -> Settings:
    return app_state(request).settings


async def _client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


PasswordsDep = Annotated[PasswordHasher, Depends(_password_hasher)]
TokensDep = Annotated[TokenIssuer, Depends(_token_issuer)]
ThrottleDep = Annotated[LoginThrottle, Depends(_login_throttle)]
# Users with their items by id, outside any unit of work, where a replica may serve
# them: the look-ups of concurrent requests are answered by one query
# (app.platform.batching).
UserViewsDep = Annotated[UserViews, Depends(_user_views)]
ReadinessDep = Annotated[Readiness, Depends(_readiness)]
ReplicasDep = Annotated[Replicas, Depends(_replicas)]
# The metrics, their gauges just sampled; None when METRICS_ENABLED is false.
MetricsDep = Annotated[Metrics | None, Depends(_metrics)]
SettingsDep = Annotated[Settings, Depends(_settings)]
# The client's address: a proxy's X-Forwarded-For, when it is one of TRUSTED_PROXIES.
ClientAddressDep = Annotated[str, Depends(_client_address)]


# What the request says.

PageQuery = Annotated[Page, Query()]
UserId = Annotated[Id, Path(description="A user's id.")]
ItemId = Annotated[Id, Path(description="An item's id.")]
# Parsed only when a response is built (app.api.responses): a malformed one is ignored.
IfNoneMatch = Annotated[
    str | None,
    Header(
        max_length=2048,
        description="ETags the client holds: 304 if one is current (ignored unless it is "
        "`*` or ETags in double quotes).",
    ),
]


async def _if_match(
    settings: SettingsDep,
    if_match: Annotated[
        str | None,
        Header(
            max_length=2048,
            description="The ETag the change was based on: 412 if the resource changed "
            "since (400 unless it is `*` or ETags in double quotes).",
        ),
    ] = None,
) -> EntityTags | None:
    """The ETags a change is conditional on; None: unconditional (428 instead when
    REQUIRE_IF_MATCH). A malformed header is 400: nobody can tell which version the
    change was meant for."""
    if if_match is None:
        if settings.require_if_match:
            raise PreconditionRequired
        return None
    tags = entity_tags(if_match)
    if tags is None:
        raise MalformedIfMatch
    return tags


IfMatchDep = Annotated[EntityTags | None, Depends(_if_match)]


# Who asks.


class BearerToken(SecurityBase):
    """OAuth2's bearer scheme, read: who a valid access token names, or 401 with
    `WWW-Authenticate: Bearer`. In OpenAPI it is FastAPI's OAuth2PasswordBearer (/docs
    logs in through POST /auth/token); as a dependency it reads and verifies the token
    too, one dependency where the scheme and a reader of it would be two."""

    def __init__(self, token_url: str) -> None:
        password_flow: Any = {"tokenUrl": token_url, "scopes": {}}
        self.model = OAuth2Model(flows=OAuthFlowsModel(password=password_flow))
        self.scheme_name = "OAuth2PasswordBearer"

    async def __call__(self, request: HTTPConnection) -> Bearer:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer":
            raise NotAuthenticated("Not authenticated")  # FastAPI's words for no token
        try:
            bearer = app_state(request).tokens.bearer(token)
        except InvalidToken:
            raise NotAuthenticated from None
        request.state.user_id = bearer.user_id  # for the access log
        return bearer


# Who a valid bearer token names. Nothing is loaded: whether that user may act is
# asked in the route's own unit of work (MyAccountDep, or the write's statement).
BearerDep = Annotated[Bearer, Depends(BearerToken("/auth/token"))]


# The caller's own account.


async def _my_account_view(bearer: BearerDep, db: ReadSessionDep) -> ViewDict:
    users = UserRepository(db)
    policy.authenticated(await users.principal(bearer.user_id), bearer)
    view = await users.view(bearer.user_id)
    if view is None:  # deleted since
        raise UserNotFound
    return view


# The caller's account as it shows, once the token is checked against it (401).
MyAccountViewDep = Annotated[ViewDict, Depends(_my_account_view)]


class MyAccount:
    """The caller's own account, to change in the route's transaction. `load()` judges
    in the documented order: who asks (the token against the account: 401), then which
    version (If-Match, holding the account's row until the transaction ends: 412).

    Loaded when the route asks, not before: a password change loads it in its turn at
    the hasher, so that a request waiting for a turn holds no database connection.
    """

    def __init__(self, bearer: Bearer, tx: Transaction, if_match: EntityTags | None) -> None:
        self.bearer = bearer
        self.users = UserRepository(tx)
        self.if_match = if_match

    async def load(self) -> User:
        me = policy.authenticated(
            await self.users.get(self.bearer.user_id, lock=self.if_match is not None),
            self.bearer,
        )
        if self.if_match is not None:
            current = await self.users.view(me.id)
            if current is not None:
                etag = user_etag(current)
                if not self.if_match.match(etag, weak=False):
                    raise PreconditionFailed(etag)
        return me


async def _my_account(bearer: BearerDep, tx: TransactionDep, if_match: IfMatchDep) -> MyAccount:
    return MyAccount(bearer, tx, if_match)


MyAccountDep = Annotated[MyAccount, Depends(_my_account)]
