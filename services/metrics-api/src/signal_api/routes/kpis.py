"""/v1/kpis/*: KPI time series from the lake's partial aggregates."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from signal_api.core import service
from signal_api.core.models import (
    GpsPrecisionResponse,
    SignalQualityResponse,
    SignalStrengthResponse,
    StatusCountsResponse,
)
from signal_api.core.params import (
    OPERATOR_MAX_LENGTH,
    PERCENTILES_PATTERN,
    POSTAL_CODE_MAX_LENGTH,
    Granularity,
    granularity_range,
    percentiles,
    time_range,
)
from signal_api.deps import Context, client
from signal_api.handlers import ERROR_RESPONSES
from signal_api.query_params import (
    RANGE_LIMIT_EXTENSION,
    FromParam,
    GranularityParam,
    NetworkParam,
    OperatorParam,
    PostalParam,
    ProviderParam,
    StatusParam,
    ToParam,
    single_values,
)

# Ranges of endpoints without a granularity (they aggregate over the whole range).
MAX_AGGREGATE_RANGE_HOURS = 24 * 31
# ... as the contract states it (query_params.with_settings adds it to `to`'s description).
AGGREGATE_RANGE_DOC = {RANGE_LIMIT_EXTENSION: MAX_AGGREGATE_RANGE_HOURS}

PercentilesParam = Annotated[
    str | None,
    Query(
        description="Signal percentiles to serve per row as signal_percentiles, comma-separated, "
        "each in (0, 100], at most 7 (e.g. 10,50,90): nearest rank over the merged histograms, "
        "exact at any granularity.",
        alias="percentiles",
        max_length=64,
        examples=["10,50,90"],
        json_schema_extra={"pattern": PERCENTILES_PATTERN},
    ),
]

router = APIRouter(
    prefix="/kpis",
    responses=ERROR_RESPONSES,
    dependencies=[Depends(client), Depends(single_values)],
)


@router.get("/signal-strength", response_model=SignalStrengthResponse)
async def signal_strength(
    ctx: Context,
    from_: FromParam = None,
    to: ToParam = None,
    granularity: GranularityParam = Granularity.M1,
    operator: OperatorParam = None,
    network_type: NetworkParam = None,
    by_network_type: Annotated[
        bool, Query(description="Split each operator by network type.")
    ] = True,
    percentiles_: PercentilesParam = None,
) -> Response:
    """Average/min/max/percentile signal strength (dBm), events and devices per operator per
    time bucket."""
    window = granularity_range(
        from_, to, granularity, now=ctx.now(), limits_hours=ctx.settings.range_limits_hours
    )
    asked = percentiles(percentiles_)
    ops, nets = (
        ctx.filters("operator", operator, max_length=OPERATOR_MAX_LENGTH),
        ctx.filters("network_type", network_type),
    )
    return await ctx.cached(
        ("signal_strength", window, granularity, ops, nets, by_network_type, asked),
        lambda: service.signal_strength(
            ctx.run_columns,
            window,
            granularity,
            operators=ops,
            network_types=nets,
            by_network_type=by_network_type,
            min_events=ctx.settings.min_events,
            min_devices=ctx.settings.min_devices,
            percentiles=asked,
        ),
    )


@router.get("/gps-precision", response_model=GpsPrecisionResponse)
async def gps_precision(
    ctx: Context,
    from_: FromParam = None,
    to: ToParam = None,
    granularity: GranularityParam = Granularity.M1,
    provider: ProviderParam = None,
) -> Response:
    """Average/min/max GPS precision (m) and event count per provider per time bucket."""
    window = granularity_range(
        from_, to, granularity, now=ctx.now(), limits_hours=ctx.settings.range_limits_hours
    )
    providers = ctx.filters("provider", provider)
    return await ctx.cached(
        ("gps_precision", window, granularity, providers),
        lambda: service.gps_precision(
            ctx.run,
            window,
            granularity,
            providers=providers,
            min_events=ctx.settings.min_events,
            min_devices=ctx.settings.min_devices,
        ),
    )


@router.get("/status-counts", response_model=StatusCountsResponse)
async def status_counts(
    ctx: Context,
    from_: FromParam = None,
    to: ToParam = None,
    granularity: GranularityParam = Granularity.M1,
    postal_code: PostalParam = None,
    status: StatusParam = None,
    top: Annotated[
        int | None,
        Query(ge=1, le=1000, description="Keep the N postal codes with most OUT_OF_SERVICE."),
    ] = None,
) -> Response:
    """Event counts per postal code × status per time bucket."""
    window = granularity_range(
        from_, to, granularity, now=ctx.now(), limits_hours=ctx.settings.range_limits_hours
    )
    codes = ctx.filters("postal_code", postal_code, max_length=POSTAL_CODE_MAX_LENGTH)
    statuses = ctx.filters("status", status)
    return await ctx.cached(
        ("status_counts", window, granularity, codes, statuses, top),
        lambda: service.status_counts(
            ctx.run, window, granularity, postal_codes=codes, statuses=statuses, top=top
        ),
    )


@router.get(
    "/signal-quality",
    response_model=SignalQualityResponse,
    openapi_extra=AGGREGATE_RANGE_DOC,
)
async def signal_quality(
    ctx: Context,
    from_: FromParam = None,
    to: ToParam = None,
    operator: OperatorParam = None,
    network_type: NetworkParam = None,
) -> Response:
    """Share of events per signal-quality band per operator × network type over the range."""
    window = time_range(from_, to, now=ctx.now(), max_hours=MAX_AGGREGATE_RANGE_HOURS)
    ops, nets = (
        ctx.filters("operator", operator, max_length=OPERATOR_MAX_LENGTH),
        ctx.filters("network_type", network_type),
    )
    return await ctx.cached(
        ("signal_quality", window, ops, nets),
        lambda: service.signal_quality(
            ctx.run,
            window,
            operators=ops,
            network_types=nets,
            min_events=ctx.settings.min_events,
            min_devices=ctx.settings.min_devices,
        ),
    )
