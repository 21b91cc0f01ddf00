"""The application factory. Importing this module connects to nothing."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from app.api import health, items, users
from app.db import create_engine, create_sessionmaker
from app.errors import install_error_handlers
from app.security import PasswordHasher
from app.settings import Settings


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings)
        app.state.engine = engine
        app.state.sessionmaker = create_sessionmaker(engine)
        try:
            yield
        finally:
            await engine.dispose()

    app = FastAPI(
        title="Users & items API",
        summary="The users & items API, async-first on SQLAlchemy 2.0.",
        lifespan=lifespan,
        max_body_size=settings.max_body_size,
    )
    app.state.settings = settings
    app.state.password_hasher = PasswordHasher(settings)
    install_error_handlers(app)
    app.include_router(users.router)
    app.include_router(items.router)
    app.include_router(health.router)
    return app


app = create_app()
