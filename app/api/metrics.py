"""GET /metrics: the service's Prometheus metrics (app.platform.metrics), in Prometheus'
text format; 404 when METRICS_ENABLED is false. Not in the OpenAPI document."""

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST

from app.api.dependencies import MetricsDep

router = APIRouter(include_in_schema=False)


@router.get("/metrics")
async def metrics(metrics: MetricsDep) -> Response:
    if metrics is None:
        return Response(status_code=404)
    return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)
