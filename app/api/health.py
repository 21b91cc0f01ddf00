"""Health: liveness (no I/O) and readiness (app.platform.readiness: the database answers
and its schema is current). GET /health is an alias of /health/ready. None of them needs a
token, and they stay out of the access log at info level.
"""

from typing import Any

import orjson
from fastapi import APIRouter, Request, Response

from app.api.dependencies import ReadinessDep, ReplicasDep
from app.api.errors import mark_unavailable
from app.api.responses import errors
from app.platform.errors import RETRY_AFTER, Unavailable

router = APIRouter(tags=["health"])
NOT_READY: dict[int | str, dict[str, Any]] = {
    503: errors(503)[503]
    | {
        "description": "Not ready: the database did not answer in time, or its schema is "
        "not at the migrations' head, or the server is shutting down (the reason is in "
        "`detail`)",
    }
}


@router.get("/health/live", operation_id="health-live")
async def live() -> dict[str, str]:
    """200 while the process runs; no I/O."""
    return {"status": "ok"}


@router.get("/health/ready", operation_id="health-ready", responses=NOT_READY)
async def ready(request: Request, readiness: ReadinessDep, replicas: ReplicasDep) -> Response:
    """200 when a database round trip succeeds in time and the schema is current. With
    read replicas, the body says how each one is; a replica that is out does not make
    the service unready (its reads go to the primary)."""
    problem = await readiness.problem()
    if problem is None:
        if replicas.configured:
            body = {"status": "ok", "replicas": replicas.status()}
            return Response(orjson.dumps(body), media_type="application/json")
        return Response(b'{"status":"ok"}', media_type="application/json")
    mark_unavailable(request.scope, Unavailable.NOT_READY)
    return Response(
        orjson.dumps({"detail": problem}),
        status_code=503,
        media_type="application/json",
        headers={"Retry-After": RETRY_AFTER},
    )


# The address load balancers of earlier versions knew.
router.add_api_route(
    "/health", ready, operation_id="health-ready-alias", methods=["GET"], responses=NOT_READY
)
