from fastapi import APIRouter

from app.api.deps import SessionDep
from app.api.responses import errors
from app.db import ping

router = APIRouter(tags=["health"])


@router.get("/health", responses=errors(503))
async def health(session: SessionDep) -> dict[str, str]:
    """200 when the service can reach its database, 503 when it cannot."""
    await ping(session)
    return {"status": "ok"}
