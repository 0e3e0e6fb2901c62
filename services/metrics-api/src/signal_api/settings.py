"""Settings of the Metrics API (env prefix SIGNAL_API_), built once by `get_settings()`."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from signal_api.core.stats import DEFAULT_MIN_DEVICES, DEFAULT_MIN_EVENTS
from signal_common.limits import DEFAULT_RANGE_LIMITS_HOURS
from signal_common.quality import bands_with_overrides
from signal_common.settings import CommonSettings


class ApiSettings(CommonSettings):
    """Everything the Metrics API reads from the environment."""

    model_config = SettingsConfigDict(env_prefix="SIGNAL_API_", extra="ignore")

    engine: Literal["duckdb", "athena"] = Field(
        "duckdb", description="Query engine: duckdb (local lake) or athena (AWS)."
    )
    host: str = Field("127.0.0.1", description="Address uvicorn binds.")
    port: int = Field(8080, description="Port uvicorn listens on.")
    duckdb_threads: int = Field(2, ge=1, description="DuckDB worker threads.")
    athena_workgroup: str = Field("primary", description="Athena workgroup.")
    athena_output_location: str | None = Field(
        None, description="S3 URI for Athena query results (empty: the workgroup's setting)."
    )
    athena_poll_interval_s: float = Field(0.2, gt=0, description="Athena status poll interval.")
    query_timeout_s: float = Field(
        20.0, gt=0, description="Longest a query may run before it is cancelled (504)."
    )
    cache_ttl_s: float = Field(
        10.0,
        ge=0,
        description="Result cache TTL; set it to the stream processor's trigger interval.",
    )
    cache_max_entries: int = Field(2048, ge=1, description="Cached results kept (LRU).")
    # 256 MiB: a quarter of the API task's 1 GiB (deploy/aws), beside ~200 MiB of interpreter,
    # DuckDB/pyathena and in-flight work (max_concurrent_per_key computations per key, each at
    # most max_response_rows); ~60 full 24 h / 1m signal-strength answers (~4 MB each).
    cache_max_bytes: int = Field(
        256 * 1024 * 1024,
        ge=1024 * 1024,
        description="Bytes the result cache may hold (encoded bodies; LRU out first).",
    )
    stale_max_age_s: float = Field(
        300.0,
        ge=0,
        description="Oldest cached answer served (marked stale) when the engine fails; older "
        "entries are dropped (0: no stale fallback).",
    )
    max_response_rows: int = Field(
        100_000,
        ge=1,
        description="Most rows one response may carry; larger answers are a 422 "
        "result_too_large (ask a coarser granularity, a shorter range or filters).",
    )
    min_events: int = Field(
        DEFAULT_MIN_EVENTS,
        ge=1,
        description="A KPI figure over fewer events is withheld: its row stays with its events "
        'count, marked "suppressed": "min_events", its values and intervals null (issue 24; '
        "the sources of the default are in signal_api.core.stats).",
    )
    min_devices: int = Field(
        DEFAULT_MIN_DEVICES,
        ge=1,
        description="A KPI figure from fewer distinct devices (the HLL estimate, rounded) is "
        'withheld: its row stays with its counts, marked "suppressed": "min_devices" (issue 24; '
        "why 5 is in signal_api.core.stats). Not applied where devices are unknown (partials "
        "written before the sketches).",
    )
    max_concurrent_per_key: int = Field(
        2,
        ge=1,
        description="Uncached requests one key may have computing at once; more wait their "
        "turn (cached answers never wait).",
    )
    rows_per_token: int = Field(
        5_000,
        ge=1,
        description="Rate-limit cost of a computed answer: one token, plus one per this many "
        "rows it returned.",
    )
    ready_cache_s: float = Field(
        30.0,
        ge=0,
        description="/readyz trusts an engine success this recent (probes cost no query).",
    )
    ready_failure_threshold: int = Field(
        3,
        ge=1,
        description="Consecutive failed data queries that withdraw readiness (/readyz 503).",
    )
    auth_enabled: bool = Field(True, description="Require an X-API-Key (false: local runs).")
    api_keys_sha256: list[str] = Field(
        default_factory=list,
        description="Accepted keys as 'name:sha256hex' (or bare sha256hex); JSON list.",
    )
    rate_limit_per_minute: int = Field(600, ge=1, description="Requests per minute per API key.")
    rate_limit_burst: int = Field(100, ge=1, description="Requests a key may burst at once.")
    auth_failures_per_minute: int = Field(
        30,
        ge=1,
        description="Failed authentications (401/403) per minute per client address; past "
        "them a 429 with Retry-After. Valid keys are never throttled by it.",
    )
    auth_failure_burst: int = Field(
        10, ge=1, description="Failed authentications a client address may burst at once."
    )
    trusted_proxy_hops: int = Field(
        0,
        ge=0,
        le=10,
        description="Proxies in front of the API that append to X-Forwarded-For (1 behind an "
        "ALB); the client address is the entry that many from the right. 0: the header is "
        "ignored (anyone could forge it).",
    )
    range_limits_hours: dict[str, int] = Field(
        default_factory=lambda: dict(DEFAULT_RANGE_LIMITS_HOURS),
        description="Longest from..to range per granularity, in hours (JSON object).",
    )
    max_filter_values: int = Field(50, ge=1, description="Most values of one repeated filter.")
    alert_recent_minutes: int = Field(15, ge=1, description="Alerts: 'now' window, minutes.")
    alert_baseline_minutes: int = Field(
        24 * 60, ge=1, description="Alerts: trailing baseline before the 'now' window, minutes."
    )
    alert_out_of_service_share: float = Field(
        0.2, gt=0, le=1, description="Alerts: out-of-service share that raises an alert."
    )
    alert_signal_drop_db: float = Field(
        10.0, gt=0, description="Alerts: drop of avg signal vs baseline (dB) that raises one."
    )
    alert_min_events: int = Field(
        20, ge=1, description="Alerts: events a postal code needs in the 'now' window."
    )
    # alerts (#25): the evaluator (`signal-api alerts evaluate`) and its rules; see README "Alerts"
    alert_window_minutes: int = Field(
        5, ge=1, le=60, description="Alerts: length of the windows each rule judges, minutes."
    )
    alert_horizon_minutes: int = Field(
        60,
        ge=5,
        le=24 * 60,
        description="Alerts: windows this recent are re-evaluated every cycle (late data "
        "inside it is recorded as a correction; older late data is not).",
    )
    alert_resolve_after_windows: int = Field(
        3, ge=1, description="Alerts: clear windows in a row before a firing alert resolves."
    )
    alert_out_of_service_windows: int = Field(
        1, ge=1, description="Alerts: breaching windows in a row before out_of_service fires."
    )
    alert_signal_drop_windows: int = Field(
        1, ge=1, description="Alerts: breaching windows in a row before signal_drop fires."
    )
    alert_min_baseline_events: int = Field(
        100,
        ge=1,
        description="Alerts: events signal_drop's baseline needs before a drop is judged.",
    )
    alert_hole_share: float = Field(
        0.3, gt=0, le=1, description="Alerts: share of weak samples that makes a window a hole."
    )
    alert_hole_min_events: int = Field(
        50, ge=1, description="Alerts: events a window needs before a hole can be judged."
    )
    alert_hole_min_devices: int = Field(
        5, ge=1, description="Alerts: distinct devices a hole window needs."
    )
    alert_hole_windows: int = Field(
        3, ge=1, description="Alerts: hole windows in a row before coverage_hole fires."
    )
    alert_every_s: float = Field(
        60.0, gt=0, description="Alerts: seconds between evaluator cycles (--every)."
    )
    alert_state_lookback_days: int = Field(
        7, ge=1, description="Alerts: how far back the evaluator looks for its last state."
    )
    alert_stale_after_s: float = Field(
        300.0,
        gt=0,
        description="Alerts: /v1/alerts marks the state stale when the last cycle is older.",
    )
    # end of alerts (#25)
    summary_lookback_hours: int = Field(
        6, ge=1, description="Summary: how far back to look for the latest complete window."
    )
    complete_after_s: int = Field(
        60, ge=0, description="A window counts as complete this long after it ends."
    )
    cors_origins: list[str] = Field(
        default_factory=list, description="Origins allowed by CORS (JSON list; empty: none)."
    )
    # coverage analytics (#24)
    quality_band_overrides: dict[str, dict[str, int]] = Field(
        default_factory=dict,
        description='Per network type, e.g. {"4G": {"excellent_min": -75}} (JSON): the same '
        "value as the stream processor's SIGNAL_PROCESSOR_QUALITY_BAND_OVERRIDES, so "
        "/v1/meta/bands describes the bands the lake was computed with.",
    )

    @field_validator("quality_band_overrides")
    @classmethod
    def _valid_band_overrides(cls, value: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
        bands_with_overrides(value)  # raises ValueError naming the network type or rule
        return value

    # end of coverage analytics (#24)

    @field_validator("range_limits_hours")
    @classmethod
    def _known_granularities(cls, value: dict[str, int]) -> dict[str, int]:
        unknown = set(value) - set(DEFAULT_RANGE_LIMITS_HOURS)
        if unknown:
            raise ValueError(f"unknown granularities {sorted(unknown)} in range_limits_hours")
        return {**DEFAULT_RANGE_LIMITS_HOURS, **value}


@lru_cache(maxsize=1)
def get_settings() -> ApiSettings:
    """The process's settings, read from the environment once."""
    return ApiSettings()
