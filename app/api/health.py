from fastapi import APIRouter

from app.api.deps import SessionDep
from app.db import ping
from app.schemas import ErrorMessage

router = APIRouter(tags=["health"])


@router.get(
    "/health",
    responses={503: {"model": ErrorMessage, "description": "Database unavailable"}},
)
async def health(session: SessionDep) -> dict[str, str]:
    """200 when the service can reach its database, 503 when it cannot."""
    await ping(session)
    return {"status": "ok"}
