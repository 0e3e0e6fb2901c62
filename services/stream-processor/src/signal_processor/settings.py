"""Stream-processor settings (environment prefix SIGNAL_PROCESSOR_)."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from signal_common.settings import CommonSettings


class ProcessorSettings(CommonSettings):
    """Where to read, where to write, and how often."""

    model_config = SettingsConfigDict(env_prefix="SIGNAL_PROCESSOR_", extra="ignore")

    checkpoint_location: str = Field(
        "file:///tmp/signal-stream/checkpoints/stream-processor",
        description="Spark checkpoint (and Kinesis progress log) location.",
    )
    trigger_seconds: float = Field(20.0, gt=0, description="Micro-batch trigger interval.")
    starting_position: str = Field(
        "trim_horizon", description="trim_horizon | latest | at_timestamp (first start only)."
    )
    starting_timestamp: str | None = Field(None, description="ISO time for at_timestamp.")
    max_records_per_batch: int = Field(200_000, gt=0, description="Kinesis records per batch.")
    dedup_watermark: str = Field(
        "10 minutes",
        description=(
            "Dedup horizon: a copy of an event read within this time of the first is removed "
            "(watermark on the batch read time; bounds the dedup state)."
        ),
    )
    state_store: Literal["rocksdb", "hdfs"] = Field(
        "rocksdb",
        description="Dedup state store: RocksDB (off-heap, scales to millions of keys) or "
        "Spark's default in-memory HDFS-backed store. Fixed for the life of a checkpoint.",
    )
    resume_from_lake: bool = Field(
        True,
        description="A new checkpoint continues where the lake's last committed batch ended "
        "(false: at starting_position).",
    )
    max_event_ahead_seconds: float = Field(
        300.0, gt=0, description="Quarantine events dated more than this ahead of arrival."
    )
    max_event_behind_seconds: float = Field(
        30 * 86400.0, gt=0, description="Quarantine events dated more than this behind arrival."
    )
    publish_metrics: bool = Field(
        False, description="Publish the consumer lag (MillisBehindLatest) to CloudWatch."
    )
    cloudwatch_endpoint_url: str | None = Field(None, description="Local CloudWatch endpoint.")
    shuffle_partitions: int = Field(4, gt=0, description="spark.sql.shuffle.partitions.")
    merge_tasks: int = Field(
        4,
        gt=0,
        description="Tasks that merge a batch's KPI partials by key and write them (each writes "
        "at most one file per KPI table and hour).",
    )
    spark_master: str = Field("local[2]", description="Spark master for local runs.")
    quality_band_overrides: dict[str, dict[str, int]] = Field(
        default_factory=dict,
        description='Per network type, e.g. {"4G": {"excellent_min": -75}} (JSON).',
    )
    fault_after_write_batch: int | None = Field(
        None,
        description="Testing only: crash the process after writing this batch, before commit.",
    )


@lru_cache(maxsize=1)
def get_settings() -> ProcessorSettings:
    """The process-wide settings, read once from the environment."""
    return ProcessorSettings()
