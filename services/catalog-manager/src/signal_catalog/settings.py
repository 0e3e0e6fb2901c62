"""Settings of the catalog manager (env prefix SIGNAL_CATALOG_)."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from signal_common.lake import TABLES_BY_NAME
from signal_common.settings import CommonSettings


class PartitionMode(StrEnum):
    """How a table's partitions reach the catalog."""

    REGISTER = "register"  # list the lake, BatchCreatePartition what is missing (sync / watch)
    PROJECTION = "projection"  # Athena partition projection: nothing to register
    EVENT = "event"  # the S3 ObjectCreated Lambda registers each new partition


class EngineChoice(StrEnum):
    """Engine of `validate`: Athena in AWS, DuckDB over a local lake."""

    AUTO = "auto"  # duckdb for file:// lake roots, athena for s3://
    DUCKDB = "duckdb"
    ATHENA = "athena"


class CatalogSettings(CommonSettings):
    """Everything the catalog manager reads from the environment."""

    model_config = SettingsConfigDict(env_prefix="SIGNAL_CATALOG_", extra="ignore")

    partition_mode: PartitionMode = Field(
        PartitionMode.REGISTER, description="Partition mode of every table not in table_modes."
    )
    table_modes: dict[str, PartitionMode] = Field(
        default_factory=dict,
        description='Per-table partition mode, JSON, e.g. {"events": "projection"}.',
    )
    watch_interval_s: float = Field(30.0, gt=0, description="Seconds between `watch` cycles.")
    projection_dt_range: str = Field(
        "2020-01-01,NOW", description="Athena projection range of `dt` (yyyy-MM-dd,yyyy-MM-dd|NOW)."
    )
    crawler_role: str = Field(
        "AWSGlueServiceRole-signal-stream", description="IAM role (name or ARN) of the crawlers."
    )
    crawler_prefix: str = Field(
        "crawler_", description="Crawler names are <prefix><table>, e.g. crawler_status_count."
    )
    crawler_timeout_s: float = Field(900.0, gt=0, description="How long `crawlers start` waits.")
    crawler_poll_s: float = Field(5.0, gt=0, description="Seconds between crawler state polls.")
    drift_sample_files: int = Field(5, ge=1, description="Parquet files read per table by drift.")
    query_engine: EngineChoice = Field(EngineChoice.AUTO, description="Engine of `validate`.")
    athena_workgroup: str = Field("primary", description="Athena workgroup of `validate`.")
    athena_output_location: str | None = Field(
        None, description="s3:// staging dir for Athena results (required by the athena engine)."
    )
    retry_mode: Literal["standard", "adaptive"] = Field(
        "standard",
        description="botocore retry mode of AWS calls (throttling, 5xx, connection errors); "
        "adaptive also rate-limits the client.",
    )
    max_attempts: int = Field(
        6, ge=1, description="Attempts of an AWS call, the first included (botocore retries)."
    )
    backoff_base_s: float = Field(
        0.2, gt=0, description="First backoff after a Glue ConcurrentModificationException."
    )
    backoff_max_s: float = Field(10.0, gt=0, description="Longest such backoff.")
    compact_grace_s: float = Field(
        3600.0,
        ge=0,
        description="`compact` takes an hour partition once it ended this many seconds ago.",
    )
    compact_reader_grace_s: float = Field(
        900.0,
        ge=0,
        description="Replaced files are deleted once the compacted file is this old (longer "
        "than any query, so none loses a file it planned to read).",
    )

    @field_validator("table_modes")
    @classmethod
    def _known_tables(cls, value: dict[str, PartitionMode]) -> dict[str, PartitionMode]:
        unknown = sorted(set(value) - set(TABLES_BY_NAME))
        if unknown:
            raise ValueError(f"unknown table(s) {unknown}; known: {sorted(TABLES_BY_NAME)}")
        return value

    def mode_of(self, table: str) -> PartitionMode:
        """The partition mode of one table."""
        return self.table_modes.get(table, self.partition_mode)

    def engine(self) -> EngineChoice:
        """The concrete query engine (AUTO resolved from the lake root's scheme)."""
        if self.query_engine is not EngineChoice.AUTO:
            return self.query_engine
        return EngineChoice.ATHENA if self.lake_root.startswith("s3://") else EngineChoice.DUCKDB


def get_settings() -> CatalogSettings:
    """Settings from the environment (built once per entry-point call)."""
    return CatalogSettings()
