"""The lake layout every service agrees on: tables, columns, partition keys and paths.

Paths are relative to a lake root URI: `file:///…` locally, `s3://bucket/prefix` in AWS.
Partitions are Hive-style directories `dt=YYYY-MM-DD/hour=H` (hour as an int, 0-23), taken from
the window start (KPI tables), the event time (`events`) or the arrival/batch time (others).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlparse

import pyarrow as pa

from signal_common.quality import BAND_NAMES
from signal_common.schema import EVENT_FIELDS, hive_type


@dataclass(frozen=True)
class Column:
    """One column of a lake table, typed in Hive DDL (what Glue and Athena use)."""

    name: str
    hive_type: str
    description: str
    nullable: bool = True


@dataclass(frozen=True)
class LakeTable:
    """A table of the lake: its columns, partition keys and purpose."""

    name: str
    description: str
    columns: tuple[Column, ...]
    partition_keys: tuple[Column, ...]

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def column(self, name: str) -> Column:
        """The column (or partition key) called `name`."""
        for c in self.columns + self.partition_keys:
            if c.name == name:
                return c
        raise KeyError(f"table {self.name} has no column {name!r}")


PARTITION_KEYS: tuple[Column, ...] = (
    Column("dt", "string", "Partition date, YYYY-MM-DD (UTC).", nullable=False),
    Column("hour", "int", "Partition hour of day, 0-23 (UTC).", nullable=False),
)

_WINDOW = (
    Column("window_start", "timestamp", "Start of the 1-minute event-time window (UTC).", False),
    Column("window_end", "timestamp", "End (exclusive) of the window (UTC).", False),
)
_BATCH = (Column("batch_id", "bigint", "Micro-batch that wrote this partial aggregate.", False),)
_COUNT = Column("event_count", "bigint", "Events in the window and key.", False)


def _band_columns() -> tuple[Column, ...]:
    return tuple(
        Column(f"band_{band}_count", "bigint", f"Events in the '{band}' quality band.", False)
        for band in BAND_NAMES
    )


EVENTS = LakeTable(
    "events",
    "Clean, validated, deduplicated telemetry events.",
    columns=(
        *(
            Column(f.name, hive_type(f.kind), f.description, nullable=not f.required)
            for f in EVENT_FIELDS
        ),
        Column("arrival_time", "timestamp", "When the stream received the record (UTC).", False),
        Column("shard_id", "string", "Kinesis shard the record came from.", False),
        Column("sequence_number", "string", "Kinesis sequence number of the record.", False),
    ),
    partition_keys=PARTITION_KEYS,
)

QUARANTINE = LakeTable(
    "quarantine",
    "Records that failed parsing or validation, with the reason; nothing is dropped silently.",
    columns=(
        Column("raw_payload", "string", "The record's data as received (UTF-8, lossy)."),
        Column("reason", "string", "Reason code (invalid_json, missing, wrong_type, …).", False),
        Column("detail", "string", "Human-readable detail: field and problem."),
        Column("shard_id", "string", "Kinesis shard the record came from.", False),
        Column("sequence_number", "string", "Kinesis sequence number of the record.", False),
        Column("arrival_time", "timestamp", "When the stream received the record (UTC).", False),
        *_BATCH,
    ),
    partition_keys=PARTITION_KEYS,
)

SIGNAL_STRENGTH_BY_OPERATOR = LakeTable(
    "signal_strength_by_operator",
    "Partial aggregates of signal strength per minute, operator and network type.",
    columns=(
        *_WINDOW,
        Column("operator", "string", "Mobile network operator.", False),
        Column("network_type", "string", "2G/3G/4G/5G.", False),
        _COUNT,
        Column("signal_sum", "bigint", "Sum of signal_dbm.", False),
        Column("signal_min", "int", "Minimum signal_dbm.", False),
        Column("signal_max", "int", "Maximum signal_dbm.", False),
        *_band_columns(),
        *_BATCH,
    ),
    partition_keys=PARTITION_KEYS,
)

GPS_PRECISION_BY_PROVIDER = LakeTable(
    "gps_precision_by_provider",
    "Partial aggregates of GPS precision per minute and location provider.",
    columns=(
        *_WINDOW,
        Column("provider", "string", "Location provider (gps/network/fused).", False),
        _COUNT,
        Column("precision_sum", "double", "Sum of gps_precision_m.", False),
        Column("precision_min", "double", "Minimum gps_precision_m.", False),
        Column("precision_max", "double", "Maximum gps_precision_m.", False),
        Column("satellites_sum", "bigint", "Sum of satellites over events that report it.", False),
        Column("satellites_count", "bigint", "Events that report satellites.", False),
        *_BATCH,
    ),
    partition_keys=PARTITION_KEYS,
)

STATUS_COUNT = LakeTable(
    "status_count",
    "Partial counts per minute, postal code and service status.",
    columns=(
        *_WINDOW,
        Column("postal_code", "string", "Postal code.", False),
        Column("status", "string", "Service status.", False),
        _COUNT,
        *_BATCH,
    ),
    partition_keys=PARTITION_KEYS,
)

COVERAGE_BY_POSTAL_CODE = LakeTable(
    "coverage_by_postal_code",
    "Partial coverage aggregates per minute and postal code (map data).",
    columns=(
        *_WINDOW,
        Column("postal_code", "string", "Postal code.", False),
        _COUNT,
        Column("latitude_sum", "double", "Sum of latitude (centroid = sum / count).", False),
        Column("longitude_sum", "double", "Sum of longitude (centroid = sum / count).", False),
        Column("signal_sum", "bigint", "Sum of signal_dbm.", False),
        Column("out_of_service_count", "bigint", "Events with status OUT_OF_SERVICE.", False),
        *_BATCH,
    ),
    partition_keys=PARTITION_KEYS,
)

PIPELINE_BATCHES = LakeTable(
    "pipeline_batches",
    "One row per stream-processor micro-batch: volumes, quality and freshness.",
    columns=(
        Column("batch_id", "bigint", "Micro-batch id (Spark epoch).", False),
        Column("batch_time", "timestamp", "When the batch was processed (UTC).", False),
        Column("rows_in", "bigint", "Records read from the stream (null if unknown)."),
        Column("valid_rows", "bigint", "Records that passed validation.", False),
        Column("quarantined_rows", "bigint", "Records routed to quarantine.", False),
        Column("quarantined_by_reason", "map<string,bigint>", "Quarantined records per reason."),
        Column(
            "duplicates_removed", "bigint", "Records dedup removed as copies (null if unknown)."
        ),
        Column("max_lateness_s", "double", "Max (arrival - event_time) in seconds."),
        Column("max_event_time", "timestamp", "Newest event time in the batch."),
        Column("arrival_watermark", "timestamp", "Dedup watermark (on the batches' read time)."),
        Column("processing_ms", "bigint", "Wall time to process the batch.", False),
        # added in signal-common 0.2.0 (null in rows written before)
        Column("run_id", "string", "The processor run (one per checkpoint) that wrote the batch."),
        Column("late_dropped", "bigint", "Records dedup dropped as older than its watermark."),
        Column("millis_behind_latest", "bigint", "Consumer lag: max MillisBehindLatest of shards."),
        Column("source_positions", "string", "JSON: per shard, where the batch read from/to."),
    ),
    partition_keys=PARTITION_KEYS,
)

KPI_TABLES: tuple[LakeTable, ...] = (
    SIGNAL_STRENGTH_BY_OPERATOR,
    GPS_PRECISION_BY_PROVIDER,
    STATUS_COUNT,
    COVERAGE_BY_POSTAL_CODE,
)
ALL_TABLES: tuple[LakeTable, ...] = (EVENTS, QUARANTINE, *KPI_TABLES, PIPELINE_BATCHES)
TABLES_BY_NAME: Mapping[str, LakeTable] = {t.name: t for t in ALL_TABLES}


_ARROW_BY_HIVE: Mapping[str, pa.DataType] = {
    "string": pa.string(),
    "int": pa.int32(),
    "bigint": pa.int64(),
    "double": pa.float64(),
    "boolean": pa.bool_(),
    "timestamp": pa.timestamp("us", tz="UTC"),
    "map<string,bigint>": pa.map_(pa.string(), pa.int64()),
}


def table_arrow_schema(table: LakeTable, *, with_partitions: bool = False) -> pa.Schema:
    """The Arrow schema of a table's Parquet files (partition keys live in the path)."""
    columns = table.columns + (table.partition_keys if with_partitions else ())
    return pa.schema(
        [pa.field(c.name, _ARROW_BY_HIVE[c.hive_type], nullable=c.nullable) for c in columns]
    )


def partition_values(moment: dt.datetime) -> tuple[str, int]:
    """The (dt, hour) partition of a UTC moment."""
    moment = moment.astimezone(dt.UTC) if moment.tzinfo else moment
    return moment.strftime("%Y-%m-%d"), moment.hour


def partition_path(table: LakeTable | str, dt_value: str, hour: int) -> str:
    """Relative path of one partition, e.g. `status_count/dt=2026-11-23/hour=7`."""
    name = table if isinstance(table, str) else table.name
    return f"{name}/dt={dt_value}/hour={hour}"


def table_uri(lake_root: str, table: LakeTable | str) -> str:
    """Absolute URI of a table's directory under the lake root."""
    name = table if isinstance(table, str) else table.name
    return f"{lake_root.rstrip('/')}/{name}"


def local_path(uri: str) -> str:
    """The filesystem path of a `file://` URI (or a plain path); refuses other schemes."""
    parsed = urlparse(uri)
    if parsed.scheme in ("", "file"):
        return parsed.path if parsed.scheme else uri
    raise ValueError(f"{uri!r} is not a local path (scheme {parsed.scheme!r})")
