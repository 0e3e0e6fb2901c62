"""Settings of the dashboard (env prefix SIGNAL_DASHBOARD_), built once by `get_settings()`."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from signal_common.limits import DEFAULT_RANGE_LIMITS_HOURS


class DashboardSettings(BaseSettings):
    """Everything the dashboard reads from the environment.

    It reads no lake, catalog or AWS setting: its only data source is the metrics API.
    """

    model_config = SettingsConfigDict(env_prefix="SIGNAL_DASHBOARD_", extra="ignore")

    api_url: str = Field("http://127.0.0.1:8080", description="Base URL of the metrics API.")
    api_key: SecretStr | None = Field(None, description="Sent as X-API-Key (empty: no key).")
    request_timeout_s: float = Field(10.0, gt=0, description="Timeout of one API request.")
    retries: int = Field(
        2, ge=0, le=10, description="Retries of a request after a 5xx or connection error."
    )
    backoff_base_s: float = Field(
        0.25, gt=0, description="First retry delay (doubles per retry, jittered)."
    )
    refresh_s: float = Field(
        20.0, ge=2, description="Seconds between live refreshes of the data panels."
    )
    fresh_warn_s: float = Field(
        60.0, gt=0, description="Freshness tile turns amber when the newest event is older."
    )
    fresh_alert_s: float = Field(
        300.0, gt=0, description="Freshness tile turns red when the newest event is older."
    )
    top_postal_codes: int = Field(
        10, ge=1, le=100, description="Postal codes in the worst-postal-codes panels (top=N)."
    )
    range_limits_hours: dict[str, int] = Field(
        default_factory=lambda: dict(DEFAULT_RANGE_LIMITS_HOURS),
        # the API's defaults (signal_common.limits): the sidebar offers only the granularities
        # the API accepts for the chosen range
        description="Longest range per granularity; keep equal to the API's (JSON).",
    )
    render_log: Path | None = Field(
        None,
        description="Append one JSON line per rendered panel (what it showed, when): the "
        "freshness benchmark reads it. Empty: off.",
    )
    host: str = Field("127.0.0.1", description="Address the Streamlit server binds.")
    port: int = Field(8501, ge=0, le=65535, description="Port of the Streamlit server.")
    base_url_path: str = Field(
        "", description="URL prefix when served under a path behind a proxy, e.g. dashboard."
    )
    cookie_secret: SecretStr | None = Field(
        None,
        description="Streamlit's cookie/XSRF secret; give every replica the same one (empty: "
        "random per process, fine for one replica).",
    )
    log_level: str = Field("INFO", description="Log level.")
    log_json: bool = Field(True, description="Log JSON lines (false: plain text).")

    @field_validator("api_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"api_url must start with http:// or https://, got {value!r}")
        return value.rstrip("/")

    @field_validator("range_limits_hours")
    @classmethod
    def _known_granularities(cls, value: dict[str, int]) -> dict[str, int]:
        unknown = sorted(set(value) - set(DEFAULT_RANGE_LIMITS_HOURS))
        if unknown:
            raise ValueError(f"unknown granularities {unknown}; known: 1m, 5m, 15m, 1h, 1d")
        return {**DEFAULT_RANGE_LIMITS_HOURS, **value}

    @model_validator(mode="after")
    def _thresholds_ordered(self) -> DashboardSettings:
        if self.fresh_alert_s < self.fresh_warn_s:
            raise ValueError("fresh_alert_s must not be below fresh_warn_s")
        return self


@lru_cache(maxsize=1)
def get_settings() -> DashboardSettings:
    """The process's settings, read from the environment once."""
    return DashboardSettings()
