"""/healthz, /readyz, /metrics: for load balancers and Prometheus (no API key)."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from signal_api.core import queries
from signal_api.core.models import ErrorResponse
from signal_api.deps import Context

router = APIRouter(tags=["ops"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """Process liveness."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"model": ErrorResponse}})
async def readyz(ctx: Context) -> dict[str, str]:
    """Readiness: the engine answered within `ready_cache_s`, else a trivial query."""
    cached = await ctx.readiness.check(lambda: ctx.run(queries.ping()))
    return {"status": "ready", "engine": ctx.engine.name, "checked": "cached" if cached else "now"}


@router.get("/metrics", response_class=Response)
async def prometheus_metrics(ctx: Context) -> Response:
    """Prometheus metrics."""
    return Response(generate_latest(ctx.metrics.registry), media_type=CONTENT_TYPE_LATEST)
