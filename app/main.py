"""The application factory. Importing this module connects to nothing."""

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.telemetry import TelemetryConfig

from app.api import auth, health, items, users
from app.api.docs import OAUTH2_REDIRECT_URL, install_docs
from app.api.health import Readiness
from app.db import Sessions, connections_returned, create_engine, create_health_engine
from app.errors import install_error_handlers
from app.middleware import AnswerCancelledRequests, LimitRequestBodies
from app.observability import Metrics, Observe, metrics_endpoint, sampling
from app.repositories import user_view_loader
from app.security import PasswordHasher, TokenIssuer
from app.services import Services
from app.settings import Settings
from app.throttle import LoginThrottle

GC_THRESHOLD = 10_000
log = logging.getLogger("app")
TELEMETRY_OFF: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()  # in production, refuses a missing or weak SECRET_KEY
    metrics = Metrics() if settings.metrics_enabled else None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.environment == "development" and settings.uses_development_secret_key:
            log.warning("SECRET_KEY is not set: tokens are signed with the development key")
        engine = create_engine(settings)
        sessions = Sessions(engine)
        services = Services(
            settings=settings,
            engine=engine,
            sessions=sessions,
            passwords=PasswordHasher(settings),
            tokens=TokenIssuer(settings),
            throttle=LoginThrottle(settings, sessions),
            user_views=user_view_loader(sessions, max_batch=settings.read_batch_size),
            readiness=Readiness(create_health_engine(settings), settings.health_timeout),
            metrics=metrics,
        )
        app.state.services = services  # read through app.services.services()
        await services.passwords.prepare()
        # What start-up built lives as long as the process: freezing it spares the
        # garbage collector from walking it again and again under load (measured:
        # a third more GET /users/{id} throughput, p99 down from ~70 to ~27 ms).
        gc.collect()
        gc.freeze()
        # A request's garbage is freed by reference counting; only cycles need the
        # collector. At the default threshold (700 net new objects) it ran every few
        # requests: ~20 us per GET /users/{id} and ~40 us per POST /items/, with
        # pauses of 8-9 ms. At 10,000 it runs a few times a minute under load.
        thresholds = gc.get_threshold()
        gc.set_threshold(GC_THRESHOLD, *thresholds[1:])
        try:
            async with sampling(services):
                yield
        finally:
            gc.set_threshold(*thresholds)
            gc.unfreeze()
            services.passwords.close()
            await services.user_views.close()
            await services.readiness.close()
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
    # Added last, so outermost: even a 413 or a 503 at shutdown carries its request id.
    app.add_middleware(Observe, access_log=settings.access_log, metrics=metrics)
    install_error_handlers(app, api_routes)
    for router in routers:
        app.include_router(router)
    if metrics is not None:
        app.add_route("/metrics", metrics_endpoint, include_in_schema=False)
    install_docs(app)
    return app


app = create_app()
