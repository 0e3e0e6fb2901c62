"""Settings of alert delivery (env prefix SIGNAL_ALERTS_): destinations, retries, state."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from signal_common.settings import CommonSettings

# Alertmanager's `severity` label per rule (routing trees match on it); override per rule.
DEFAULT_SEVERITIES: dict[str, str] = {
    "out_of_service": "critical",
    "coverage_hole": "warning",
    "signal_drop": "warning",
}


class DeliverySettings(CommonSettings):
    """Where alert transitions are sent, how hard to try, and where delivery keeps its state.

    A destination is on when its URL (or topic ARN) is set; none set means log lines only.
    """

    model_config = SettingsConfigDict(env_prefix="SIGNAL_ALERTS_", extra="ignore")

    alertmanager_url: str | None = Field(
        None, description="Alertmanager base URL (POSTs its /api/v2/alerts); empty: off."
    )
    alertmanager_firing_ttl_s: float = Field(
        24 * 3600.0,
        gt=0,
        description="endsAt of a firing alert, this long after its evaluation time, renewed "
        "when half has passed: the notifier does not re-send every 30 s as Prometheus does, "
        "so the alert must not expire on Alertmanager's resolve_timeout (5 min).",
    )
    severities: dict[str, str] = Field(
        default_factory=lambda: dict(DEFAULT_SEVERITIES),
        description="Alertmanager `severity` label per rule (JSON object).",
    )
    webhook_url: str | None = Field(None, description="Generic JSON webhook URL; empty: off.")
    webhook_secret: SecretStr | None = Field(
        None, description="HMAC-SHA256 key of the webhook's X-Signal-Signature (required)."
    )
    webhook_tolerance_s: float = Field(
        300.0,
        gt=0,
        description="Receivers reject a signed timestamp further than this from their clock "
        "(the local receiver's default).",
    )
    sns_topic_arn: str | None = Field(None, description="SNS topic ARN (AWS); empty: off.")
    sns_endpoint_url: str | None = Field(None, description="SNS endpoint (local runs, moto).")
    retry_attempts: int = Field(5, ge=1, description="Attempts per notification and destination.")
    retry_base_s: float = Field(0.5, gt=0, description="First backoff (doubles per attempt).")
    retry_max_s: float = Field(8.0, gt=0, description="Longest single backoff.")
    retry_total_s: float = Field(
        30.0, gt=0, description="Longest time spent on one notification, backoffs included."
    )
    http_timeout_s: float = Field(5.0, gt=0, description="Timeout of one HTTP attempt.")
    dashboard_url: str = Field(
        "http://127.0.0.1:8501",
        description="The dashboard's public base URL: Alertmanager's generatorURL links the "
        "area's Coverage map view under it.",
    )
    state_dir: Path = Field(
        Path("/tmp/signal-stream/alert-delivery"),
        description="Delivery state: sent keys per destination (dedup across restarts) and "
        "dead letters (dead-letters.jsonl). Keep it on a persistent volume.",
    )
    state_s3_uri: str | None = Field(
        None,
        description="s3://bucket/prefix for the same state (AWS, where a task's disk is not "
        "kept across restarts); set, it replaces state_dir.",
    )
    metrics_port: int | None = Field(
        None,
        ge=0,
        le=65535,
        description="The evaluator serves its Prometheus /metrics (cycles, transitions, "
        "deliveries, dead letters) on this port; empty: not served.",
    )
    metrics_host: str = Field(
        "127.0.0.1", description="Address of that /metrics (0.0.0.0 where a scraper reaches it)."
    )
    sent_retention_days: float = Field(
        30.0,
        gt=0,
        description="Sent keys kept this long (far beyond the evaluator's horizon, in which it "
        "hands transitions again).",
    )

    @field_validator("state_s3_uri")
    @classmethod
    def _s3_uri(cls, value: str | None) -> str | None:
        if value and not (value.startswith("s3://") and value[5:].strip("/")):
            raise ValueError("state_s3_uri must be s3://bucket[/prefix]")
        return value or None

    @model_validator(mode="after")
    def _webhook_needs_secret(self) -> DeliverySettings:
        if self.webhook_url and not (
            self.webhook_secret and self.webhook_secret.get_secret_value()
        ):
            raise ValueError("SIGNAL_ALERTS_WEBHOOK_SECRET is required with a webhook URL")
        return self


def get_delivery_settings() -> DeliverySettings:
    """Delivery's settings, read from the environment."""
    return DeliverySettings()
