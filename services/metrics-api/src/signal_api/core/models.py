"""Response models (they document the API in OpenAPI)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


def _example(**values: Any) -> ConfigDict:
    return ConfigDict(json_schema_extra={"examples": [values]})


class Meta(BaseModel):
    """How a response was produced."""

    stale: bool = Field(False, description="True when served from the last good result.")
    cached: bool = Field(False, description="True when served from the cache.")


class SignalStrengthRow(BaseModel):
    model_config = _example(
        bucket_start="2026-11-23T07:00:00Z",
        operator="Orange",
        network_type="4G",
        event_count=1834,
        avg_signal_dbm=-91.42,
        min_signal_dbm=-128,
        max_signal_dbm=-52,
    )

    bucket_start: dt.datetime
    operator: str
    network_type: str | None = Field(None, description="Null when not split by network type.")
    event_count: int
    avg_signal_dbm: float = Field(description="Σsignal_sum / Σevent_count.")
    min_signal_dbm: int
    max_signal_dbm: int


class GpsPrecisionRow(BaseModel):
    model_config = _example(
        bucket_start="2026-11-23T07:00:00Z",
        provider="gps",
        event_count=912,
        avg_precision_m=7.3,
        min_precision_m=1.2,
        max_precision_m=48.0,
        avg_satellites=11.4,
    )

    bucket_start: dt.datetime
    provider: str
    event_count: int
    avg_precision_m: float
    min_precision_m: float
    max_precision_m: float
    avg_satellites: float | None = Field(None, description="Over events reporting satellites.")


class StatusCountRow(BaseModel):
    model_config = _example(
        bucket_start="2026-11-23T07:00:00Z",
        postal_code="1000",
        status="OUT_OF_SERVICE",
        event_count=17,
    )

    bucket_start: dt.datetime
    postal_code: str
    status: str
    event_count: int


class SignalQualityRow(BaseModel):
    model_config = _example(
        operator="Orange",
        network_type="4G",
        event_count=1000,
        band_counts={"excellent": 310, "good": 420, "fair": 200, "poor": 70},
        band_shares={"excellent": 0.31, "good": 0.42, "fair": 0.2, "poor": 0.07},
    )

    operator: str
    network_type: str
    event_count: int
    band_counts: dict[str, int] = Field(description="Events per quality band.")
    band_shares: dict[str, float] = Field(description="Share of events per quality band.")


class CoverageRow(BaseModel):
    model_config = _example(
        postal_code="1000",
        event_count=5230,
        latitude=50.8466,
        longitude=4.3528,
        avg_signal_dbm=-88.1,
        out_of_service_share=0.012,
    )

    postal_code: str
    event_count: int
    latitude: float = Field(description="Centroid latitude: Σlatitude / Σevents.")
    longitude: float
    avg_signal_dbm: float
    out_of_service_share: float


_FROM_USED = "Range start used: the request's, rounded up to the millisecond the queries bind."
_TO_USED = "Range end used (exclusive), rounded up to the millisecond as `from` is."


class Series(BaseModel):
    """Rows of a time series or breakdown."""

    from_: dt.datetime = Field(serialization_alias="from", description=_FROM_USED)
    to: dt.datetime = Field(description=_TO_USED)
    granularity: str | None = None
    meta: Meta = Field(default_factory=Meta)


class SignalStrengthResponse(Series):
    rows: list[SignalStrengthRow]


class GpsPrecisionResponse(Series):
    rows: list[GpsPrecisionRow]


class StatusCountsResponse(Series):
    rows: list[StatusCountRow]


class SignalQualityResponse(Series):
    rows: list[SignalQualityRow]


class CoverageResponse(Series):
    rows: list[CoverageRow]


class Alert(BaseModel):
    model_config = _example(
        postal_code="9000",
        severity="critical",
        reasons=["out_of_service"],
        since="2026-11-23T07:12:00Z",
        recent_event_count=240,
        out_of_service_share=0.46,
        recent_avg_signal_dbm=-104.2,
        baseline_avg_signal_dbm=-90.5,
        signal_drop_db=13.7,
    )

    postal_code: str
    severity: str = Field(description="warning or critical (twice the threshold).")
    reasons: list[str] = Field(description="out_of_service and/or signal_drop.")
    since: dt.datetime = Field(description="Start of the minute the trouble began.")
    recent_event_count: int
    out_of_service_share: float
    recent_avg_signal_dbm: float | None
    baseline_avg_signal_dbm: float | None
    signal_drop_db: float | None


class AlertsResponse(BaseModel):
    as_of: dt.datetime
    recent_from: dt.datetime
    baseline_from: dt.datetime
    thresholds: dict[str, float]
    alerts: list[Alert]
    meta: Meta = Field(default_factory=Meta)


class SummaryResponse(BaseModel):
    as_of: dt.datetime = Field(description="The instant used: `at` rounded up to the millisecond.")
    window_start: dt.datetime | None = Field(description="Latest complete 1-minute window.")
    events_per_min: int
    avg_signal_dbm: float | None
    out_of_service_share: float | None
    freshness_s: float | None = Field(description="Seconds from the window's end to as_of.")
    newest_batch_time: dt.datetime | None
    meta: Meta = Field(default_factory=Meta)


class PipelineResponse(BaseModel):
    from_: dt.datetime = Field(serialization_alias="from", description=_FROM_USED)
    to: dt.datetime = Field(description=_TO_USED)
    as_of: dt.datetime
    batches: int
    rows_in: int
    valid_rows: int
    quarantined_rows: int
    duplicates_removed: int = Field(description="Copies of events removed by dedup.")
    late_dropped: int = Field(
        description="Records dedup dropped as older than its watermark (0 in a healthy job)."
    )
    millis_behind_latest: int | None = Field(
        description="Consumer lag of the newest batch: max MillisBehindLatest over its shards."
    )
    max_millis_behind_latest: int | None = Field(description="Largest consumer lag in the range.")
    events_per_s: float = Field(description="Valid rows per second over the range.")
    quarantine_rate: float | None = Field(description="Quarantined / rows in.")
    quarantine_rate_by_reason: dict[str, float]
    quarantined_by_reason: dict[str, int]
    avg_processing_ms: float | None
    max_lateness_s: float | None
    newest_batch_time: dt.datetime | None
    newest_event_time: dt.datetime | None
    batch_freshness_s: float | None
    event_freshness_s: float | None
    meta: Meta = Field(default_factory=Meta)


class ErrorBody(BaseModel):
    code: str
    message: str
    parameter: str | None = None
    allowed: list[str] | None = None


class ErrorResponse(BaseModel):
    error: ErrorBody
