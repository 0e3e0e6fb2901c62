"""/v1/coverage, /v1/summary: the network now, per postal code and overall; /v1/alerts*
(routes/alerts.py) is included here."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response

from signal_api.core import service
from signal_api.core.models import CoverageResponse, SummaryResponse
from signal_api.core.params import POSTAL_CODE_MAX_LENGTH, instant, percentiles, time_range
from signal_api.deps import Context, client
from signal_api.handlers import ERROR_RESPONSES
from signal_api.query_params import AtParam, FromParam, PostalParam, ToParam, single_values
from signal_api.routes import alerts as evaluated_alerts
from signal_api.routes.kpis import (
    AGGREGATE_RANGE_DOC,
    MAX_AGGREGATE_RANGE_HOURS,
    PercentilesParam,
)

router = APIRouter(
    responses=ERROR_RESPONSES, dependencies=[Depends(client), Depends(single_values)]
)


@router.get("/coverage", response_model=CoverageResponse, openapi_extra=AGGREGATE_RANGE_DOC)
async def coverage(
    ctx: Context,
    from_: FromParam = None,
    to: ToParam = None,
    postal_code: PostalParam = None,
    percentiles_: PercentilesParam = None,
) -> Response:
    """Per postal code over the range: centroid, events, devices, avg and percentile signal,
    out-of-service share."""
    window = time_range(from_, to, now=ctx.now(), max_hours=MAX_AGGREGATE_RANGE_HOURS)
    codes = ctx.filters("postal_code", postal_code, max_length=POSTAL_CODE_MAX_LENGTH)
    asked = percentiles(percentiles_)
    return await ctx.cached(
        ("coverage", window, codes, asked),
        lambda: service.coverage(
            ctx.run,
            window,
            postal_codes=codes,
            min_events=ctx.settings.min_events,
            min_devices=ctx.settings.min_devices,
            percentiles=asked,
        ),
    )


@router.get("/summary", response_model=SummaryResponse)
async def summary(ctx: Context, at: AtParam = None) -> Response:
    """The latest complete 1-minute window: events/min, avg signal, out-of-service share."""
    moment = instant("at", at) if at is not None else ctx.rounded_now()
    return await ctx.cached(
        ("summary", moment),
        lambda: service.summary(
            ctx.run,
            moment,
            lookback_hours=ctx.settings.summary_lookback_hours,
            complete_after_s=ctx.settings.complete_after_s,
            min_events=ctx.settings.min_events,
        ),
    )


# the evaluator's alerts (#25): /alerts (= /alerts/active), /alerts/history, /alerts/rules
router.include_router(evaluated_alerts.router)
