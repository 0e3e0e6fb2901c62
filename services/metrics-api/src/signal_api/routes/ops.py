"""/healthz, /readyz, /metrics: for load balancers and Prometheus (no API key)."""

from __future__ import annotations

import datetime as dt

import anyio
from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from signal_api.context import ApiContext
from signal_api.core import queries
from signal_api.core.models import ErrorResponse
from signal_api.core.params import TimeRange
from signal_api.deps import Context

router = APIRouter(tags=["ops"])
HOUR = dt.timedelta(hours=1)


async def _on_engine(ctx: ApiContext, query: queries.Query) -> None:
    """Run `query` on the engine itself, not as a data query (`ctx.run`): a probe's success
    must not clear the data queries' failures (core/readiness.py)."""
    await anyio.to_thread.run_sync(ctx.engine.run, query)


def newest_batches(ctx: ApiContext) -> queries.Query:
    """The readiness probe: the two newest hour partitions of pipeline_batches (the processor
    writes a row per micro-batch there). Finding no batch in them is still ready: the lake was
    read and has nothing new yet (a fresh lake has no pipeline_batches at all); a missing or
    unreadable root, table or partition makes the query raise."""
    hour = ctx.now().replace(minute=0, second=0, microsecond=0)
    return queries.newest_batch(TimeRange(hour - HOUR, hour + HOUR))


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """Process liveness."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"model": ErrorResponse}})
async def readyz(ctx: Context) -> dict[str, str]:
    """Readiness: the lake can be read (a recent query succeeded, else its newest batches)."""
    cached = await ctx.readiness.check(
        lambda: _on_engine(ctx, newest_batches(ctx)), retry=lambda q: _on_engine(ctx, q)
    )
    return {"status": "ready", "engine": ctx.engine.name, "checked": "cached" if cached else "now"}


@router.get("/metrics", response_class=Response)
async def prometheus_metrics(ctx: Context) -> Response:
    """Prometheus metrics."""
    return Response(generate_latest(ctx.metrics.registry), media_type=CONTENT_TYPE_LATEST)
