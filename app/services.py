"""What the app's lifespan builds, as one typed object, and the one way to reach it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.requests import HTTPConnection

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from app.api.health import Readiness
    from app.batching import Coalescer
    from app.db import Sessions
    from app.observability import Metrics
    from app.security import PasswordHasher, TokenIssuer
    from app.settings import Settings
    from app.throttle import LoginThrottle
    from app.views import ViewDict


@dataclass(frozen=True, slots=True)
class Services:
    """Everything a request may use beyond its own input; lives as long as the app runs."""

    settings: Settings
    engine: AsyncEngine
    sessions: Sessions
    passwords: PasswordHasher
    tokens: TokenIssuer
    throttle: LoginThrottle
    # Users with their items by id, concurrent look-ups answered by one query.
    user_views: Coalescer[int, ViewDict]
    readiness: Readiness
    metrics: Metrics | None  # None when METRICS_ENABLED is false


def services_of(app: Starlette) -> Services:
    """The running app's services (its lifespan sets them; see app.main)."""
    found: Services = app.state.services
    return found


def services(connection: HTTPConnection) -> Services:
    return services_of(connection.app)
