"""The producer's settings (environment prefix SIGNAL_PRODUCER_), built once by get_settings()."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from signal_common.settings import CommonSettings


class ProducerSettings(CommonSettings):
    """Producer settings; every field can be overridden on the command line."""

    model_config = SettingsConfigDict(env_prefix="SIGNAL_PRODUCER_", extra="ignore")

    partition_key: str = Field("device_id", description="Event field used as partition key.")
    target_rps: float = Field(0.0, ge=0, description="Send rate, records/s (0: unlimited).")
    concurrency: int = Field(8, ge=1, le=64, description="Concurrent PutRecords calls.")
    max_attempts: int = Field(8, ge=1, description="Sends per record before dead-lettering.")
    base_backoff_s: float = Field(0.05, gt=0, description="First retry backoff (doubles).")
    max_backoff_s: float = Field(2.0, gt=0, description="Longest retry backoff.")
    linger_s: float = Field(0.2, gt=0, description="Longest a record waits for its batch.")
    dead_letter_path: str = Field(
        "signal-producer-dead-letter.jsonl", description="Dead-letter file (JSON lines)."
    )
    ground_truth_path: str | None = Field(
        None, description="Ground-truth file of accepted records (.jsonl or .parquet)."
    )


@lru_cache(maxsize=1)
def get_settings() -> ProducerSettings:
    """The settings from the environment (cached; tests construct ProducerSettings directly)."""
    return ProducerSettings()
