"""Response models (they document the API in OpenAPI)."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, Field


class Meta(BaseModel):
    """How a response was produced."""

    stale: bool = Field(False, description="True when served from the last good result.")
    cached: bool = Field(False, description="True when served from the cache.")


class SignalStrengthRow(BaseModel):
    bucket_start: dt.datetime
    operator: str
    network_type: str | None = Field(None, description="Null when not split by network type.")
    event_count: int
    avg_signal_dbm: float = Field(description="Σsignal_sum / Σevent_count.")
    min_signal_dbm: int
    max_signal_dbm: int


class GpsPrecisionRow(BaseModel):
    bucket_start: dt.datetime
    provider: str
    event_count: int
    avg_precision_m: float
    min_precision_m: float
    max_precision_m: float
    avg_satellites: float | None = Field(None, description="Over events reporting satellites.")


class StatusCountRow(BaseModel):
    bucket_start: dt.datetime
    postal_code: str
    status: str
    event_count: int


class SignalQualityRow(BaseModel):
    operator: str
    network_type: str
    event_count: int
    band_counts: dict[str, int] = Field(description="Events per quality band.")
    band_shares: dict[str, float] = Field(description="Share of events per quality band.")


class CoverageRow(BaseModel):
    postal_code: str
    event_count: int
    latitude: float = Field(description="Centroid latitude: Σlatitude / Σevents.")
    longitude: float
    avg_signal_dbm: float
    out_of_service_share: float


class Series(BaseModel):
    """Rows of a time series or breakdown."""

    from_: dt.datetime = Field(serialization_alias="from")
    to: dt.datetime
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
    as_of: dt.datetime
    window_start: dt.datetime | None = Field(description="Latest complete 1-minute window.")
    events_per_min: int
    avg_signal_dbm: float | None
    out_of_service_share: float | None
    freshness_s: float | None = Field(description="Seconds from the window's end to as_of.")
    newest_batch_time: dt.datetime | None
    meta: Meta = Field(default_factory=Meta)


class PipelineResponse(BaseModel):
    from_: dt.datetime = Field(serialization_alias="from")
    to: dt.datetime
    as_of: dt.datetime
    batches: int
    rows_in: int
    valid_rows: int
    quarantined_rows: int
    duplicates_removed: int
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
