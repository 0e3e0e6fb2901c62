"""Response models (they document the API in OpenAPI)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from signal_api.core.stats import Suppression


def _example(**values: Any) -> ConfigDict:
    return ConfigDict(json_schema_extra={"examples": [values]})


class PartitionsRead(BaseModel):
    """The hour partitions of one table a query read: `first` to `last`, both inclusive."""

    model_config = _example(
        table="signal_strength_by_operator",
        first="dt=2026-11-23/hour=6",
        last="dt=2026-11-23/hour=7",
        hours=2,
    )

    table: str
    first: str = Field(description="The first partition read, as its path: dt=…/hour=….")
    last: str = Field(description="The last partition read (inclusive).")
    hours: int = Field(description="Hour partitions from first to last.")


class QueryRun(BaseModel):
    """One query behind a response."""

    name: str = Field(description="The query's name (signal_api.core.queries).")
    sql_sha256: str = Field(
        description="SHA-256 (64 hex digits) of the query's SQL text as the API builds it: "
        "`?` for every bound value, before the row cap's LIMIT (the same text, the same hash)."
    )
    partitions: list[PartitionsRead] = Field(description="Per table, the partitions it read.")


class Meta(BaseModel):
    """How a response was produced, and what data it stands on."""

    stale: bool = Field(False, description="True when served from the last good result.")
    cached: bool = Field(False, description="True when served from the cache.")
    watermark: dt.datetime | None = Field(
        None,
        description="The data's watermark when the answer was computed: the newest event time "
        "of any committed micro-batch (each batch's capped at its batch time), from "
        "pipeline_batches over the last summary_lookback_hours. Events dated at or before it "
        "may still arrive late and fold in; null: no batch in that time.",
    )
    newest_batch_time: dt.datetime | None = Field(
        None, description="The newest committed micro-batch then (null: none in that time)."
    )
    queries: list[QueryRun] = Field(
        default_factory=list, description="The data queries the answer ran, in order."
    )
    min_events: int | None = Field(
        None,
        description="The withholding threshold the API applies to KPI rows: a row with fewer "
        'events is marked "suppressed": "min_events" (SIGNAL_API_MIN_EVENTS). Published so a '
        "reader can say why a row is withheld.",
    )
    min_devices: int | None = Field(
        None,
        description="The distinct devices a KPI row needs to be served; fewer is "
        '"suppressed": "min_devices" (SIGNAL_API_MIN_DEVICES).',
    )


# Issue 24: every KPI row carries the sample size behind it and says when its figures are withheld.
_EVENTS = (
    "Events behind the row's figures (its sample size; the same number as event_count, which "
    "stays for compatibility)."
)
_SUPPRESSED = (
    "Why the row's figures are withheld, or null when they are served: `min_events` when it has "
    "fewer events than the API's min_events (SIGNAL_API_MIN_EVENTS, default 20); the row keeps "
    "its keys and counts, its values and intervals are null; `min_devices` when its distinct "
    "devices (the `devices` estimate) are fewer than min_devices (SIGNAL_API_MIN_DEVICES, "
    "default 5), checked only when `devices` is known."
)
_DEVICES = (
    "Distinct devices behind the row: the estimate of the union of the merged partials' HLL "
    "sketches (Apache DataSketches HLL_4, lg_k 12), rounded; within ±3.25 % of the exact count "
    "95 % of the time, exact in practice below a few hundred devices. Null when the range "
    "includes partials written before the sketches (unknown, never zero)."
)
_DEVICES_CI = (
    "DataSketches' bound on the distinct devices at 2 standard deviations (~95 %), rounded. "
    "Null when `devices` is."
)
_MEAN_CI = (
    "Normal 95 % interval of the average: mean ± z·s/√n with z = 1.959963984540054 and the "
    "sample variance s² = (Σx² − (Σx)²/n) / (n − 1) from the merged count, sum and sum of "
    "squares (adequate at n ≥ 20, which min_events guarantees by default). Null when "
    "suppressed, or when the range includes partials written before the sum of squares."
)
_PERCENTILES = (
    "With `percentiles=`: the signal's nearest-rank percentiles (dBm) keyed p<value> (p10, "
    "p50, p2.5): the p-th is the smallest observed signal_dbm whose cumulative count reaches "
    "ceil(p/100 · n), from the merged 131-bin histograms, so exact at any granularity "
    "(numpy's percentile method='inverted_cdf'). Null when not asked, when suppressed, or when "
    "the range includes partials written before the histograms."
)
_CI = (
    "Wilson 95 % score interval of the share (z = 1.959963984540054), computed from the integer "
    "counts behind it; every share the API serves has `<share>_ci_low` and `<share>_ci_high` "
    "of the same shape. Null when suppressed."
)
_WITHHELD = " Null when suppressed."


class SignalStrengthRow(BaseModel):
    model_config = _example(
        bucket_start="2026-11-23T07:00:00Z",
        operator="Orange",
        network_type="4G",
        event_count=1834,
        events=1834,
        devices=211,
        devices_ci_low=209,
        devices_ci_high=214,
        suppressed=None,
        avg_signal_dbm=-91.42,
        avg_signal_dbm_ci_low=-92.1,
        avg_signal_dbm_ci_high=-90.74,
        min_signal_dbm=-128,
        max_signal_dbm=-52,
        signal_percentiles={"p10": -112, "p50": -91, "p90": -72},
    )

    bucket_start: dt.datetime
    operator: str
    network_type: str | None = Field(None, description="Null when not split by network type.")
    event_count: int
    events: int = Field(description=_EVENTS)
    devices: int | None = Field(None, description=_DEVICES)
    devices_ci_low: int | None = Field(None, description=_DEVICES_CI)
    devices_ci_high: int | None = Field(None, description=_DEVICES_CI)
    suppressed: Suppression | None = Field(None, description=_SUPPRESSED)
    avg_signal_dbm: float | None = Field(description="Σsignal_sum / Σevent_count." + _WITHHELD)
    avg_signal_dbm_ci_low: float | None = Field(None, description=_MEAN_CI)
    avg_signal_dbm_ci_high: float | None = Field(None, description=_MEAN_CI)
    min_signal_dbm: int | None = Field(description="Weakest sample." + _WITHHELD)
    max_signal_dbm: int | None = Field(description="Strongest sample." + _WITHHELD)
    signal_percentiles: dict[str, int] | None = Field(None, description=_PERCENTILES)


class GpsPrecisionRow(BaseModel):
    model_config = _example(
        bucket_start="2026-11-23T07:00:00Z",
        provider="gps",
        event_count=912,
        events=912,
        devices=140,
        devices_ci_low=139,
        devices_ci_high=142,
        suppressed=None,
        avg_precision_m=7.3,
        avg_precision_m_ci_low=6.9,
        avg_precision_m_ci_high=7.7,
        min_precision_m=1.2,
        max_precision_m=48.0,
        avg_satellites=11.4,
    )

    bucket_start: dt.datetime
    provider: str
    event_count: int
    events: int = Field(description=_EVENTS)
    devices: int | None = Field(None, description=_DEVICES)
    devices_ci_low: int | None = Field(None, description=_DEVICES_CI)
    devices_ci_high: int | None = Field(None, description=_DEVICES_CI)
    suppressed: Suppression | None = Field(None, description=_SUPPRESSED)
    avg_precision_m: float | None = Field(description="Σprecision / Σevents." + _WITHHELD)
    avg_precision_m_ci_low: float | None = Field(None, description=_MEAN_CI)
    avg_precision_m_ci_high: float | None = Field(None, description=_MEAN_CI)
    min_precision_m: float | None = Field(description="Best precision." + _WITHHELD)
    max_precision_m: float | None = Field(description="Worst precision." + _WITHHELD)
    avg_satellites: float | None = Field(
        None, description="Over events reporting satellites (null: none did, or suppressed)."
    )


class StatusCountRow(BaseModel):
    model_config = _example(
        bucket_start="2026-11-23T07:00:00Z",
        postal_code="1000",
        status="OUT_OF_SERVICE",
        event_count=17,
        events=17,
        devices=9,
        devices_ci_low=9,
        devices_ci_high=9,
    )

    bucket_start: dt.datetime
    postal_code: str
    status: str
    event_count: int
    events: int = Field(
        description="Events with this status (the same number as event_count, which stays for "
        "compatibility). A count is the sample size itself, which suppression always keeps, so "
        "these rows are never suppressed."
    )
    devices: int | None = Field(None, description=_DEVICES)
    devices_ci_low: int | None = Field(None, description=_DEVICES_CI)
    devices_ci_high: int | None = Field(None, description=_DEVICES_CI)


class SignalQualityRow(BaseModel):
    model_config = _example(
        operator="Orange",
        network_type="4G",
        event_count=1000,
        events=1000,
        devices=120,
        devices_ci_low=119,
        devices_ci_high=122,
        suppressed=None,
        band_counts={"excellent": 310, "good": 420, "fair": 200, "poor": 70},
        band_shares={"excellent": 0.31, "good": 0.42, "fair": 0.2, "poor": 0.07},
        band_shares_ci_low={"excellent": 0.2821, "good": 0.3898, "fair": 0.1764, "poor": 0.0558},
        band_shares_ci_high={"excellent": 0.3393, "good": 0.4508, "fair": 0.2259, "poor": 0.0875},
    )

    operator: str
    network_type: str
    event_count: int
    events: int = Field(description=_EVENTS)
    devices: int | None = Field(None, description=_DEVICES)
    devices_ci_low: int | None = Field(None, description=_DEVICES_CI)
    devices_ci_high: int | None = Field(None, description=_DEVICES_CI)
    suppressed: Suppression | None = Field(None, description=_SUPPRESSED)
    band_counts: dict[str, int] | None = Field(
        description="Events per quality band (a suppressed row's distribution is withheld "
        "whole: null)."
    )
    band_shares: dict[str, float] | None = Field(
        description="Share of events per quality band." + _WITHHELD
    )
    band_shares_ci_low: dict[str, float] | None = Field(None, description=_CI)
    band_shares_ci_high: dict[str, float] | None = Field(None, description=_CI)


class CoverageRow(BaseModel):
    model_config = _example(
        postal_code="1000",
        event_count=5230,
        events=5230,
        devices=602,
        devices_ci_low=595,
        devices_ci_high=610,
        suppressed=None,
        latitude=50.8466,
        longitude=4.3528,
        avg_signal_dbm=-88.1,
        avg_signal_dbm_ci_low=-88.5,
        avg_signal_dbm_ci_high=-87.7,
        signal_percentiles={"p10": -110, "p50": -88, "p90": -67},
        out_of_service_share=0.012,
        out_of_service_share_ci_low=0.0094,
        out_of_service_share_ci_high=0.0154,
    )

    postal_code: str
    event_count: int
    events: int = Field(description=_EVENTS)
    devices: int | None = Field(None, description=_DEVICES)
    devices_ci_low: int | None = Field(None, description=_DEVICES_CI)
    devices_ci_high: int | None = Field(None, description=_DEVICES_CI)
    suppressed: Suppression | None = Field(None, description=_SUPPRESSED)
    latitude: float | None = Field(
        description="Centroid latitude: Σlatitude / Σevents. Null when suppressed (the centroid "
        "of a few events locates them)."
    )
    longitude: float | None = Field(description="Centroid longitude." + _WITHHELD)
    avg_signal_dbm: float | None = Field(description="Σsignal / Σevents." + _WITHHELD)
    avg_signal_dbm_ci_low: float | None = Field(None, description=_MEAN_CI)
    avg_signal_dbm_ci_high: float | None = Field(None, description=_MEAN_CI)
    signal_percentiles: dict[str, int] | None = Field(None, description=_PERCENTILES)
    out_of_service_share: float | None = Field(
        description="OUT_OF_SERVICE events / events." + _WITHHELD
    )
    out_of_service_share_ci_low: float | None = Field(None, description=_CI)
    out_of_service_share_ci_high: float | None = Field(None, description=_CI)


class CoverageH3Row(BaseModel):
    model_config = _example(
        h3_cell="891fb466257ffff",
        h3_resolution=9,
        latitude=50.8466,
        longitude=4.3528,
        events=412,
        devices=57,
        devices_ci_low=57,
        devices_ci_high=58,
        suppressed=None,
        avg_signal_dbm=-97.4,
        avg_signal_dbm_ci_low=-98.6,
        avg_signal_dbm_ci_high=-96.2,
        signal_percentiles={"p50": -97},
        band="fair",
        band_counts={"excellent": 31, "good": 102, "fair": 160, "poor": 119},
        out_of_service_share=0.021,
        out_of_service_share_ci_low=0.0113,
        out_of_service_share_ci_high=0.0388,
    )

    h3_cell: str = Field(description="H3 cell (v4, lowercase hex), e.g. 891fb466257ffff.")
    h3_resolution: int = Field(description="The cell's H3 resolution (the request's `res`).")
    latitude: float = Field(
        description="The cell's centre (H3's cell_to_latlng), not its events' centroid: the "
        "cell's geometry, so given on suppressed rows too (it locates no one more finely than "
        "the cell id)."
    )
    longitude: float = Field(description="The cell's centre longitude.")
    events: int = Field(description=_EVENTS)
    devices: int | None = Field(None, description=_DEVICES)
    devices_ci_low: int | None = Field(None, description=_DEVICES_CI)
    devices_ci_high: int | None = Field(None, description=_DEVICES_CI)
    suppressed: Suppression | None = Field(None, description=_SUPPRESSED)
    avg_signal_dbm: float | None = Field(description="Σsignal / Σevents." + _WITHHELD)
    avg_signal_dbm_ci_low: float | None = Field(None, description=_MEAN_CI)
    avg_signal_dbm_ci_high: float | None = Field(None, description=_MEAN_CI)
    signal_percentiles: dict[str, int | None] | None = Field(
        None,
        description="The signal's nearest-rank percentiles (dBm): p50 always, and those asked "
        "with `percentiles=` (see /v1/coverage). Null when suppressed, or when the range holds "
        "partial rows without a histogram (unknown).",
    )
    band: str | None = Field(
        None,
        description="Quality band of the cell's median event (nearest rank, bands ordered poor < "
        "fair < good < excellent; each event banded by its own network type's thresholds, "
        "/v1/meta/bands)." + _WITHHELD,
    )
    band_counts: dict[str, int] | None = Field(
        None, description="Events per quality band." + _WITHHELD
    )
    out_of_service_share: float | None = Field(
        None, description="OUT_OF_SERVICE events / events." + _WITHHELD
    )
    out_of_service_share_ci_low: float | None = Field(None, description=_CI)
    out_of_service_share_ci_high: float | None = Field(None, description=_CI)


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


class CoverageH3Response(Series):
    from_: dt.datetime = Field(
        serialization_alias="from",
        description="Range start used: the request's floored to the hour (coverage_by_h3 "
        "holds hourly partials, so whole hours are what it answers exactly).",
    )
    to: dt.datetime = Field(
        description="Range end used (exclusive): the request's ceiled to the hour."
    )
    resolution: int = Field(description="The H3 resolution of every row (7 or 9).")
    rows: list[CoverageH3Row]


class WorstCellRow(BaseModel):
    model_config = _example(
        rank=1, operator="Orange", network_type="4G", cell_id=268435,
        events=512, devices=73, devices_ci_low=73, devices_ci_high=74, suppressed=None,
        latitude=50.8466, longitude=4.3528, h3_cell="891fa1c22b3ffff",
        avg_signal_dbm=-112.4, avg_signal_dbm_ci_low=-113.6, avg_signal_dbm_ci_high=-111.2,
        signal_p10=-128, signal_p50=-113, out_of_service_share=0.41,
        out_of_service_share_ci_low=0.3678, out_of_service_share_ci_high=0.4536,
    )  # fmt: skip

    rank: int = Field(description="1 = the worst cell of the range.")
    operator: str
    network_type: str
    cell_id: int = Field(description="Serving cell identity (CID/NCI) the events report.")
    events: int = Field(description=_EVENTS)
    devices: int | None = Field(None, description=_DEVICES)
    devices_ci_low: int | None = Field(None, description=_DEVICES_CI)
    devices_ci_high: int | None = Field(None, description=_DEVICES_CI)
    suppressed: Suppression | None = Field(None, description=_SUPPRESSED)
    latitude: float | None = Field(
        None, description="Centroid of the cell's events (Σlatitude / Σevents)." + _WITHHELD
    )
    longitude: float | None = Field(None, description="Centroid longitude." + _WITHHELD)
    h3_cell: str | None = Field(
        None,
        description="The resolution-9 H3 cell of the centroid: where /v1/coverage/h3 and the "
        "dashboard's hexagon map show it." + _WITHHELD,
    )
    avg_signal_dbm: float | None = Field(None, description="Σsignal / Σevents." + _WITHHELD)
    avg_signal_dbm_ci_low: float | None = Field(None, description=_MEAN_CI)
    avg_signal_dbm_ci_high: float | None = Field(None, description=_MEAN_CI)
    signal_p10: int | None = Field(
        None,
        description="Nearest-rank 10th percentile of signal_dbm (exact, merged histogram); the "
        "ranking's second key. Null when suppressed or unknown (partials without a histogram).",
    )
    signal_p50: int | None = Field(None, description="Nearest-rank median of signal_dbm.")
    out_of_service_share: float | None = Field(
        None, description="OUT_OF_SERVICE events / events: the ranking's first key." + _WITHHELD
    )
    out_of_service_share_ci_low: float | None = Field(None, description=_CI)
    out_of_service_share_ci_high: float | None = Field(None, description=_CI)


class WorstCellsResponse(Series):
    top: int = Field(description="The most rows asked for (`top`).")
    cells: int = Field(description="Serving cells with events in the range (ranked or withheld).")
    withheld: int = Field(
        description="Of them, cells whose figures are withheld (too few events or devices): "
        "ranked after every served cell, by events."
    )
    rows: list[WorstCellRow]


class SummaryResponse(BaseModel):
    as_of: dt.datetime = Field(description="The instant used: `at` rounded up to the millisecond.")
    window_start: dt.datetime | None = Field(description="Latest complete 1-minute window.")
    events_per_min: int
    events: int = Field(0, description="Events of the window (= events_per_min).")
    suppressed: Suppression | None = Field(None, description=_SUPPRESSED)
    avg_signal_dbm: float | None
    avg_signal_dbm_ci_low: float | None = Field(None, description=_MEAN_CI)
    avg_signal_dbm_ci_high: float | None = Field(None, description=_MEAN_CI)
    out_of_service_share: float | None
    out_of_service_share_ci_low: float | None = Field(None, description=_CI)
    out_of_service_share_ci_high: float | None = Field(None, description=_CI)
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
    events_per_s: float = Field(
        description="Valid rows per second over the whole range (low when the range is longer "
        "than the span with batches; see throughput_events_per_s)."
    )
    throughput_events_per_s: float | None = Field(
        None,
        description="Valid rows per second between the first and the last batch in the range: "
        "the rows of every batch after the first over the seconds between their batch times "
        "(the first batch's rows arrived before the span). Null with fewer than two batches.",
    )
    throughput_from: dt.datetime | None = Field(
        None, description="The first batch time in the range (start of the throughput span)."
    )
    throughput_to: dt.datetime | None = Field(
        None, description="The last batch time in the range (end of the throughput span)."
    )
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


class NetworkBands(BaseModel):
    """One network type's thresholds (dBm) and where each comes from."""

    measure: str = Field(description="What signal_dbm measures on this RAT (RSRP, RSCP, …).")
    unit: str
    excellent_min: int = Field(description="Lower bound (inclusive) of 'excellent'.")
    good_min: int = Field(description="Lower bound (inclusive) of 'good'.")
    fair_min: int = Field(description="Lower bound (inclusive) of 'fair'; below it 'poor'.")
    source: str = Field(description="Where the band thresholds come from.")
    hole_max_dbm: int = Field(description="A sample at or below it is weak (a coverage hole).")
    hole_source: str = Field(description="Where the hole threshold comes from.")
    overridden: bool = Field(description="Whether settings changed this RAT's defaults.")


class BandsResponse(BaseModel):
    """The signal-quality bands the API serves (signal_common.quality.band_definition)."""

    model_config = _example(
        version=2,
        overridden=False,
        band_names=["excellent", "good", "fair", "poor"],
        rule="a sample is in the first band whose lower bound (inclusive) it reaches: …",
        networks={
            "4G": {
                "measure": "RSRP",
                "unit": "dBm",
                "excellent_min": -80,
                "good_min": -90,
                "fair_min": -100,
                "source": "LTE RSRP ranges: …",
                "hole_max_dbm": -110,
                "hole_source": "LTE drive-test practice: weak sample at RSRP <= -110 dBm",
                "overridden": False,
            }
        },
    )

    version: int = Field(description="Version of the default definition (BANDS_VERSION).")
    overridden: bool = Field(description="Whether settings override any default.")
    band_names: list[str] = Field(description="Band names, best first.")
    rule: str = Field(description="How a sample is assigned a band, in words.")
    networks: dict[str, NetworkBands] = Field(description="Per network type (2G … 5G).")


class ErrorBody(BaseModel):
    code: str
    message: str
    parameter: str | None = None
    allowed: list[str] | None = None


class ErrorResponse(BaseModel):
    error: ErrorBody
