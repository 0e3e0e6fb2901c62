"""/v1/coverage, /v1/coverage/h3, /v1/summary: the network now, per postal code, per H3 hexagon
and overall; /v1/alerts* (routes/alerts.py) is included here."""

from __future__ import annotations

import enum
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from signal_api.core import service
from signal_api.core.models import (
    CoverageH3Response,
    CoverageResponse,
    SummaryResponse,
    WorstCellsResponse,
)
from signal_api.core.params import (
    POSTAL_CODE_MAX_LENGTH,
    instant,
    percentiles,
    time_range,
    whole_windows,
)
from signal_api.deps import Context, client
from signal_api.handlers import ERROR_RESPONSES
from signal_api.query_params import AtParam, FromParam, PostalParam, ToParam, single_values
from signal_api.routes import alerts as evaluated_alerts
from signal_api.routes.kpis import (
    AGGREGATE_RANGE_DOC,
    MAX_AGGREGATE_RANGE_HOURS,
    PercentilesParam,
)
from signal_common.lake import COVERAGE_BY_CELL, COVERAGE_BY_H3, H3_RESOLUTIONS

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


class H3Resolution(enum.IntEnum):
    """The H3 resolutions the lake keeps (signal_common.lake.H3_RESOLUTIONS)."""

    R7 = 7
    R9 = 9


assert tuple(H3Resolution) == H3_RESOLUTIONS
ResolutionParam = Annotated[
    H3Resolution,
    Query(
        alias="res",
        description="H3 resolution of the cells: 7 (about 5.2 km² per cell) or 9 (about "
        "0.1 km², as the FCC's broadband maps use).",
    ),
]


@router.get("/coverage/h3", response_model=CoverageH3Response, openapi_extra=AGGREGATE_RANGE_DOC)
async def coverage_h3(
    ctx: Context,
    res: ResolutionParam = H3Resolution.R9,
    from_: FromParam = None,
    to: ToParam = None,
    percentiles_: PercentilesParam = None,
) -> Response:
    """Per H3 hexagon over the range, widened to whole hours (the table's window; the answer's
    from/to say which): events, devices, avg and median signal, the median event's quality
    band, out-of-service share; suppression applied."""
    asked_range = time_range(from_, to, now=ctx.now(), max_hours=MAX_AGGREGATE_RANGE_HOURS)
    window = whole_windows(asked_range, COVERAGE_BY_H3.window)
    asked = percentiles(percentiles_)
    resolution = int(res)
    return await ctx.cached(
        ("coverage_h3", window, resolution, asked),
        lambda: service.coverage_h3(
            ctx.run,
            window,
            resolution=resolution,
            min_events=ctx.settings.min_events,
            min_devices=ctx.settings.min_devices,
            percentiles=asked,
        ),
    )


MAX_WORST_CELLS = 1000  # as the status-counts top
TopCellsParam = Annotated[
    int,
    Query(
        alias="top", ge=1, le=MAX_WORST_CELLS,
        description=f"Rows to return, worst first (1-{MAX_WORST_CELLS}).",
    ),
]  # fmt: skip


@router.get("/cells/worst", response_model=WorstCellsResponse, openapi_extra=AGGREGATE_RANGE_DOC)
async def worst_cells(
    ctx: Context, top: TopCellsParam = 10, from_: FromParam = None, to: ToParam = None
) -> Response:
    """The serving cells (cell_id) with the highest out-of-service share, then the weakest p10
    signal, over the range widened to whole hours; sample sizes and suppression per cell."""
    asked_range = time_range(from_, to, now=ctx.now(), max_hours=MAX_AGGREGATE_RANGE_HOURS)
    window = whole_windows(asked_range, COVERAGE_BY_CELL.window)
    return await ctx.cached(
        ("worst_cells", window, top),
        lambda: service.worst_cells(
            ctx.run,
            window,
            top=top,
            min_events=ctx.settings.min_events,
            min_devices=ctx.settings.min_devices,
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
