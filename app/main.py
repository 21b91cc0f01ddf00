"""The application factory: the app's parts, wired together. Importing this module
connects to nothing."""

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.telemetry import TelemetryConfig
from starlette.routing import BaseRoute, Route

from app.api import auth, health, items, metrics, users
from app.api.dependencies import AppState
from app.api.docs import OAUTH2_REDIRECT_URL, install_docs
from app.api.errors import install_error_handlers
from app.api.middleware import AnswerCancelledRequests, LimitRequestBodies, Observe
from app.domain.repositories.users import user_view_loader
from app.domain.security import PasswordHasher, TokenIssuer
from app.domain.throttle import LoginThrottle
from app.platform.engine import connections_returned, create_engine, create_health_engine
from app.platform.metrics import Metrics
from app.platform.readiness import Readiness
from app.platform.replicas import Replicas
from app.platform.runtime import collector_tuned_for_serving
from app.platform.sessions import Sessions
from app.platform.settings import Settings

log = logging.getLogger("app")
# What a page on an allowed origin may send beyond the CORS-safelisted headers, and what
# of the responses its script may read. Tokens travel in Authorization, not cookies: no
# credentials mode.
CORS_REQUEST_HEADERS = [
    "Authorization",
    "Content-Type",
    "If-Match",
    "If-None-Match",
    "Idempotency-Key",
    "Consistency-Token",
    "X-Request-ID",
]
CORS_RESPONSE_HEADERS = [
    "ETag",
    "X-Request-ID",
    "Link",
    "Retry-After",
    "Idempotent-Replayed",
    "Consistency-Token",
]
CORS_PREFLIGHT_MAX_AGE = 600  # seconds a browser may reuse a preflight's answer
TELEMETRY_OFF: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}


def methods_of(routes: Sequence[BaseRoute]) -> list[str]:
    """The HTTP methods the routes answer, for CORS preflights."""
    return sorted(
        {method for route in routes if isinstance(route, Route) for method in route.methods or ()}
    )


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()  # in production, refuses a missing or weak SECRET_KEY
    measured = Metrics() if settings.metrics_enabled else None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.environment == "development" and settings.uses_development_secret_key:
            log.warning("SECRET_KEY is not set: tokens are signed with the development key")
        engine = create_engine(settings)
        sessions = Sessions(engine)
        replicas = Replicas(settings, engine, sessions, measured)
        state = AppState(
            settings=settings,
            engine=engine,
            sessions=sessions,
            passwords=PasswordHasher(settings),
            tokens=TokenIssuer(settings),
            throttle=LoginThrottle(settings, sessions),
            replicas=replicas,
            user_views=user_view_loader(replicas.read, max_batch=settings.read_batch_size),
            readiness=Readiness(create_health_engine(settings), settings.health_timeout),
            metrics=measured,
        )
        app.state.app_state = state  # read by app.api.dependencies, and nowhere else
        await state.passwords.prepare()
        try:
            async with AsyncExitStack() as serving:
                serving.enter_context(collector_tuned_for_serving())
                await serving.enter_async_context(replicas.watched())
                if measured is not None:
                    sampled = measured.sampled_every_second(state.sample_metrics)
                    await serving.enter_async_context(sampled)
                yield
        finally:
            state.passwords.close()
            await state.user_views.close()
            await state.readiness.close()
            await replicas.close()
            # Requests cancelled when the shutdown's grace period ran out hand their
            # connections back as they unwind (within milliseconds): then dispose()
            # closes them with the others, instead of the process exit.
            await connections_returned(engine, within=1.0)
            await engine.dispose()

    app = FastAPI(
        title="Users & items API",
        summary="The users & items API, async-first on SQLAlchemy 2.0.",
        lifespan=lifespan,
        telemetry=None if settings.telemetry else TELEMETRY_OFF,
        # /docs and /redoc come from install_docs: assets of a pinned package, no CDN.
        docs_url=None,
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=OAUTH2_REDIRECT_URL,
        openapi_tags=[
            {"name": "auth", "description": "Log in (OAuth2 password flow) for a bearer token."},
            {"name": "users", "description": "Sign up, read accounts, manage your own."},
            {"name": "items", "description": "Items: public to read, their owner's to change."},
            {"name": "health", "description": "Liveness, and readiness to serve."},
        ],
    )
    # The busiest routes first: matched in order.
    routers = (users.router, items.router, auth.router, health.router)
    api_routes = [route for router in routers for route in router.routes]
    app.add_middleware(LimitRequestBodies, max_body_size=settings.max_body_size, routes=api_routes)
    app.add_middleware(AnswerCancelledRequests)
    if settings.cors_origins:
        # Inside Observe, so that preflights are logged and counted; outside the rest, so
        # that errors (413, 429, 503) reach the page too, Retry-After readable.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=methods_of(api_routes),
            allow_headers=CORS_REQUEST_HEADERS,
            expose_headers=CORS_RESPONSE_HEADERS,
            max_age=CORS_PREFLIGHT_MAX_AGE,
        )
    # Added last, so outermost: even a 413 or a 503 at shutdown carries its request id.
    app.add_middleware(Observe, access_log=settings.access_log, metrics=measured)
    install_error_handlers(app, api_routes)
    for router in routers:
        app.include_router(router)
    if measured is not None:
        app.include_router(metrics.router)
    install_docs(app)
    return app


app = create_app()
