"""Settings of the smoke command (env prefix SIGNAL_SMOKE_); its flags override them."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from signal_common.settings import CommonSettings


class SmokeSettings(CommonSettings):
    """What `signal-smoke` reads from the environment (flags win over each of these)."""

    model_config = SettingsConfigDict(env_prefix="SIGNAL_SMOKE_", extra="ignore")

    aws_region: str | None = Field(  # type: ignore[assignment]
        None, description="AWS region (empty: the secret ARN's, then AWS_REGION)."
    )
    api_key: str | None = Field(
        None, description="An API key to send as X-API-Key (instead of reading a secret)."
    )
    secretsmanager_endpoint_url: str | None = Field(
        None, description="Secrets Manager endpoint (local runs)."
    )
    cloudwatch_endpoint_url: str | None = Field(None, description="CloudWatch endpoint (local).")
    events: int = Field(20, ge=1, le=500, description="Marked events to send (one PutRecords).")
    marker_age_minutes: int = Field(
        2880,
        ge=60,
        le=27 * 1440,
        description="The marked events are dated this many minutes back plus the run's offset "
        "(under a day): far behind live and late traffic, inside the processor's 30-day "
        "plausibility bound (SIGNAL_PROCESSOR_MAX_EVENT_BEHIND_SECONDS).",
    )
    complete_after_s: int = Field(
        60, ge=0, description="The API's SIGNAL_API_COMPLETE_AFTER_S (default 60)."
    )
    timeout_s: float = Field(300.0, gt=0, description="Longest each waiting check waits.")
    poll_s: float = Field(5.0, gt=0, description="Seconds between two probes of a check.")
    http_timeout_s: float = Field(10.0, gt=0, description="Timeout of one HTTP request.")


def get_settings() -> SmokeSettings:
    """The settings of this process's environment."""
    return SmokeSettings()
