"""/v1/pipeline: the stream processor's health from `pipeline_batches`."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response

from signal_api.core import service
from signal_api.core.models import PipelineResponse
from signal_api.core.params import time_range
from signal_api.deps import Context, client
from signal_api.handlers import ERROR_RESPONSES
from signal_api.query_params import FromParam, ToParam, single_values
from signal_api.routes.kpis import AGGREGATE_RANGE_DOC, MAX_AGGREGATE_RANGE_HOURS

router = APIRouter(
    responses=ERROR_RESPONSES, dependencies=[Depends(client), Depends(single_values)]
)


@router.get("/pipeline", response_model=PipelineResponse, openapi_extra=AGGREGATE_RANGE_DOC)
async def pipeline(ctx: Context, from_: FromParam = None, to: ToParam = None) -> Response:
    """Pipeline health from pipeline_batches: freshness, throughput, quarantine, dedup."""
    window = time_range(from_, to, now=ctx.now(), max_hours=MAX_AGGREGATE_RANGE_HOURS)
    moment = ctx.rounded_now()
    return await ctx.cached(
        ("pipeline", window, moment),
        lambda: service.pipeline(ctx.run, window, at=moment),
    )
