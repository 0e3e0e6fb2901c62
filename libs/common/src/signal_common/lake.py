"""The lake layout every service agrees on: tables, columns, partition keys and paths.

Paths are relative to a lake root URI: `file:///…` locally, `s3://bucket/prefix` in AWS.
Partitions are Hive-style directories `dt=YYYY-MM-DD/hour=H` (hour as an int, 0-23), taken from
the window start (KPI tables), the event time (`events`) or the arrival/batch time (others).

Every table ends with two lineage columns that make compaction safe for readers with no lock and
no catalog switch. `commit_seq` is a lake-wide sequence: the processor gives each micro-batch the
next number and records it in its commit head (`_commits/<run>.json`). A compacted file replaces
all rows of its partition up to a sequence `S`: its rows carry `compacted = true` and
`commit_seq = S`. A reader keeps, per partition, the compacted rows of the highest `S` and the
uncompacted rows above it (`visible_rows_sql`), so a reader that sees a compacted file and the
files it replaced (or an older compacted file) at once still counts each event once, and late
rows written after a compaction are visible at once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal
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
    merge: Literal["key", "sum", "min", "max", "hist_add", "hll_union"] = "key"
    """How partial rows fold (the processor's driver, compaction; signal_common.partials): group
    by the keys, add sums, keep minima/maxima, add histograms element-wise, union sketches.
    A null in a group folds to null: unknown (a row older than its column) is never zero."""


@dataclass(frozen=True)
class LakeTable:
    """A table of the lake: its columns, partition keys and purpose."""

    name: str
    description: str
    columns: tuple[Column, ...]
    partition_keys: tuple[Column, ...]
    window: dt.timedelta = dt.timedelta(minutes=1)
    """The event-time window of a KPI table's partial rows (1 minute; 1 hour for
    coverage_by_h3). Readers merge whole windows, so a range is served in whole windows."""

    @property
    def window_unit(self) -> Literal["minute", "hour"]:
        """The window as a unit name (what windows are floored to; the view's suffix)."""
        if self.window == dt.timedelta(minutes=1):
            return "minute"
        if self.window == dt.timedelta(hours=1):
            return "hour"
        raise ValueError(f"table {self.name} has a {self.window} window (minute or hour only)")

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def data_columns(self) -> tuple[Column, ...]:
        """The columns a writer computes (every column but the lineage ones)."""
        return tuple(c for c in self.columns if c.name not in LINEAGE_COLUMN_NAMES)

    @property
    def is_kpi(self) -> bool:
        """Whether rows are partial aggregates (compaction merges them) or records (it
        concatenates them)."""
        return any(c.merge != "key" for c in self.columns)

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

LINEAGE_COLUMNS: tuple[Column, ...] = (
    Column(
        "commit_seq",
        "bigint",
        "Lake-wide sequence of the batch that wrote the row; on a compacted row, the highest "
        "sequence it replaces.",
        False,
    ),
    Column(
        "compacted",
        "boolean",
        "True on rows written by compaction (they replace the partition's rows up to commit_seq).",
        False,
    ),
)
LINEAGE_COLUMN_NAMES = frozenset(c.name for c in LINEAGE_COLUMNS)
COMPACTED_BATCH_ID = -1
"""The batch_id of compacted KPI rows (they merge many batches)."""

_WINDOW = (
    Column("window_start", "timestamp", "Start of the 1-minute event-time window (UTC).", False),
    Column("window_end", "timestamp", "End (exclusive) of the window (UTC).", False),
)
_BATCH = (
    Column(
        "batch_id", "bigint", "Micro-batch that wrote the row (-1 on compacted KPI rows).", False
    ),
)
_COUNT = Column("event_count", "bigint", "Events in the window and key.", False, "sum")

# --- added by #24 (after signal-common 0.5.0): null in partial rows written before ------------
# Readers and every fold treat null as unknown, never as zero: a histogram, a sketch or a sum of
# squares over a range that includes an older row is unknown (signal_common.partials).
_SIGNAL_SQ_SUM = Column(
    "signal_sq_sum", "bigint", "Sum of signal_dbm squared (variance, intervals).", True, "sum"
)
_SIGNAL_HIST = Column(
    "signal_hist",
    "array<bigint>",
    "Exact histogram: 131 counts, element i (0-based) = events with signal_dbm = -150 + i. "
    "A fixed array: measured smaller in Parquet than a sparse map (benchmarks/"
    "bench_histogram_layout.py). Merge: add element-wise.",
    True,
    "hist_add",
)
_DEVICES_HLL = Column(
    "devices_hll",
    "binary",
    "Distinct device_id: Apache DataSketches HLL_4 sketch, lg_k 12, compact bytes (RSE 1.63 %, "
    "95 %: +/-3.25 %); events with no device_id are not counted.",
    True,
    "hll_union",
)


def _band_columns() -> tuple[Column, ...]:
    return tuple(
        Column(
            f"band_{band}_count", "bigint", f"Events in the '{band}' quality band.", False, "sum"
        )
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
        *LINEAGE_COLUMNS,
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
        *LINEAGE_COLUMNS,
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
        Column("signal_sum", "bigint", "Sum of signal_dbm.", False, "sum"),
        Column("signal_min", "int", "Minimum signal_dbm.", False, "min"),
        Column("signal_max", "int", "Maximum signal_dbm.", False, "max"),
        *_band_columns(),
        _SIGNAL_SQ_SUM,
        _SIGNAL_HIST,
        _DEVICES_HLL,
        *_BATCH,
        *LINEAGE_COLUMNS,
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
        Column("precision_sum", "double", "Sum of gps_precision_m.", False, "sum"),
        Column("precision_min", "double", "Minimum gps_precision_m.", False, "min"),
        Column("precision_max", "double", "Maximum gps_precision_m.", False, "max"),
        Column(
            "satellites_sum",
            "bigint",
            "Sum of satellites over events that report it.",
            False,
            "sum",
        ),
        Column("satellites_count", "bigint", "Events that report satellites.", False, "sum"),
        Column(
            "precision_sq_sum",
            "double",
            "Sum of gps_precision_m squared (variance, intervals).",
            True,
            "sum",
        ),
        _DEVICES_HLL,
        *_BATCH,
        *LINEAGE_COLUMNS,
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
        _DEVICES_HLL,
        *_BATCH,
        *LINEAGE_COLUMNS,
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
        Column("latitude_sum", "double", "Sum of latitude (centroid = sum / count).", False, "sum"),
        Column(
            "longitude_sum", "double", "Sum of longitude (centroid = sum / count).", False, "sum"
        ),
        Column("signal_sum", "bigint", "Sum of signal_dbm.", False, "sum"),
        Column(
            "out_of_service_count", "bigint", "Events with status OUT_OF_SERVICE.", False, "sum"
        ),
        _SIGNAL_SQ_SUM,
        _SIGNAL_HIST,
        _DEVICES_HLL,
        *_BATCH,
        *LINEAGE_COLUMNS,
    ),
    partition_keys=PARTITION_KEYS,
)

H3_RESOLUTIONS: tuple[int, ...] = (7, 9)
"""The H3 resolutions of `coverage_by_h3` (h3 v4): 7 (cells of about 5.2 km², 1.4 km edge) for
a region, 9 (about 0.105 km², 201 m edge) as the FCC's broadband maps use for a neighbourhood."""

_HOUR_WINDOW = (
    Column("window_start", "timestamp", "Start of the 1-hour event-time window (UTC).", False),
    Column("window_end", "timestamp", "End (exclusive) of the window (UTC).", False),
)

COVERAGE_BY_H3 = LakeTable(
    "coverage_by_h3",
    "Partial coverage aggregates per hour and H3 hexagon cell at resolutions 7 and 9 (#24). "
    "Hourly, not per minute: a resolution-9 cell holds about one event a minute, so per-minute "
    "rows would be about as many as the events (benchmarks: 40x fewer rows per hour).",
    columns=(
        *_HOUR_WINDOW,
        Column("h3_resolution", "int", "H3 resolution of h3_cell: 7 or 9.", False),
        Column(
            "h3_cell",
            "string",
            "H3 cell (v4, lowercase hex string, e.g. 891f1d48177ffff) holding the event's "
            "latitude and longitude.",
            False,
        ),
        _COUNT,
        Column("signal_sum", "bigint", "Sum of signal_dbm.", False, "sum"),
        Column(
            "out_of_service_count", "bigint", "Events with status OUT_OF_SERVICE.", False, "sum"
        ),
        *_band_columns(),
        _SIGNAL_SQ_SUM,
        _SIGNAL_HIST,
        _DEVICES_HLL,
        *_BATCH,
        *LINEAGE_COLUMNS,
    ),
    partition_keys=PARTITION_KEYS,
    window=dt.timedelta(hours=1),
)

COVERAGE_BY_CELL = LakeTable(
    "coverage_by_cell",
    "Partial coverage aggregates per hour and serving cell (operator, network type, cell_id) of "
    "the events that report a cell_id (#24: worst cells). Hourly, as coverage_by_h3.",
    columns=(
        *_HOUR_WINDOW,
        Column("operator", "string", "Mobile network operator.", False),
        Column("network_type", "string", "2G/3G/4G/5G.", False),
        Column("cell_id", "bigint", "Serving cell identity (CID/NCI) the events report.", False),
        _COUNT,
        Column("latitude_sum", "double", "Sum of latitude (centroid = sum / count).", False, "sum"),
        Column(
            "longitude_sum", "double", "Sum of longitude (centroid = sum / count).", False, "sum"
        ),
        Column("signal_sum", "bigint", "Sum of signal_dbm.", False, "sum"),
        Column(
            "out_of_service_count", "bigint", "Events with status OUT_OF_SERVICE.", False, "sum"
        ),
        _SIGNAL_SQ_SUM,
        _SIGNAL_HIST,
        _DEVICES_HLL,
        *_BATCH,
        *LINEAGE_COLUMNS,
    ),
    partition_keys=PARTITION_KEYS,
    window=dt.timedelta(hours=1),
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
        *LINEAGE_COLUMNS,
    ),
    partition_keys=PARTITION_KEYS,
)

# --- alert_events (#25): written by the metrics API's alert evaluator, read by its API --------
# Not a stream table: partitioned by day only and written one file per evaluation cycle, so it
# stays out of ALL_TABLES (whose readers and compaction assume dt/hour partitions and lineage).
ALERT_EVENTS = LakeTable(
    "alert_events",
    "The alert evaluator's cycles, per-window alert states and state transitions (history).",
    columns=(
        Column(
            "evaluated_at", "timestamp", "Evaluation time of the cycle that wrote the row.", False
        ),
        Column(
            "kind",
            "string",
            "cycle (one per cycle), state (per alert and window) or transition.",
            False,
        ),
        Column("alert_id", "string", "Alert identity: rule:area_kind:area (null on cycle rows)."),
        Column("rule", "string", "out_of_service, signal_drop or coverage_hole."),
        Column("area_kind", "string", "postal_code (h3 cells later)."),
        Column("area", "string", "The area's value, e.g. a postal code."),
        Column(
            "state", "string", "pending, firing, resolved or inactive (new state on transitions)."
        ),
        Column("previous", "string", "The state before a transition."),
        Column(
            "window_end",
            "timestamp",
            "End of the window the row judges (cycle: the newest).",
            False,
        ),
        Column("since", "timestamp", "Start of the alert's current episode (first pending)."),
        Column("breaches", "int", "Breaching windows in a row (state rows)."),
        Column("clears", "int", "Clear windows in a row while firing (state rows)."),
        Column("measures", "string", "JSON object of the window's measures (events, shares...)."),
        Column("summary", "string", "One human sentence."),
        Column("correction", "boolean", "True when late data re-evaluated a past window."),
        Column("transition_key", "string", "Dedup key of a transition: alert_id|state|since."),
    ),
    partition_keys=(PARTITION_KEYS[0],),
)


def alert_events_file(evaluated_at: dt.datetime) -> str:
    """The relative path of one evaluation cycle's file (deterministic: a rerun replaces it)."""
    moment = evaluated_at.astimezone(dt.UTC)
    return f"{ALERT_EVENTS.name}/dt={moment:%Y-%m-%d}/eval-{moment:%Y%m%dT%H%M%S}Z.parquet"


# --- end of alert_events (#25) ------------------------------------------------------------------

KPI_TABLES: tuple[LakeTable, ...] = (
    SIGNAL_STRENGTH_BY_OPERATOR,
    GPS_PRECISION_BY_PROVIDER,
    STATUS_COUNT,
    COVERAGE_BY_POSTAL_CODE,
    COVERAGE_BY_H3,
    COVERAGE_BY_CELL,
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
    "array<bigint>": pa.list_(pa.int64()),
    "binary": pa.binary(),
}


def table_arrow_schema(
    table: LakeTable, *, with_partitions: bool = False, with_lineage: bool = True
) -> pa.Schema:
    """The Arrow schema of a table's Parquet files (partition keys live in the path; without
    lineage: what a writer computes before the lake writer stamps commit_seq and compacted)."""
    own = table.columns if with_lineage else table.data_columns
    columns = own + (table.partition_keys if with_partitions else ())
    return pa.schema(
        [pa.field(c.name, _ARROW_BY_HIVE[c.hive_type], nullable=c.nullable) for c in columns]
    )


def with_current_columns(table: LakeTable, data: pa.Table) -> pa.Table:
    """A file's rows in the table's current layout (`table_arrow_schema`): a nullable column
    added after the file was written reads as null (unknown, never zero); a missing required
    column is an error (KeyError)."""
    schema = table_arrow_schema(table)
    columns = []
    for f in schema:
        if f.name in data.column_names:
            columns.append(data[f.name].cast(f.type))
        elif f.nullable:
            columns.append(pa.nulls(data.num_rows, f.type))
        else:
            raise KeyError(f"a {table.name} file has no column {f.name!r} (required)")
    return pa.Table.from_arrays(columns, schema=schema)


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


def visible_rows_sql(table: LakeTable | str, where: str = "") -> str:
    """A Trino (and DuckDB) subquery of the rows of `table` a reader must count.

    Per partition, the compacted rows of the highest commit_seq (the partition's cut) and the
    uncompacted rows above it: any mix of a compacted file, the files it replaced and older
    compacted files yields each event once. One scan with a window function, never a join of
    two scans: each scan lists the files on its own, so a compacted file appearing between two
    listings would hide raw rows the first listing read without their replacement.
    `where` may filter on partition keys, windows and grouping keys but never on measures:
    every replaced row's compacted counterpart has the same window and keys, so it passes the
    same filter and still hides it. `OFFSET 0` keeps DuckDB from lifting the filter above the
    window function (where it would stop pruning partitions); Trino removes it as a no-op.
    """
    name = table if isinstance(table, str) else table.name
    filtered = f" WHERE {where}" if where else ""
    return (
        "(SELECT * FROM (SELECT *, MAX(CASE WHEN compacted THEN commit_seq END)"
        " OVER (PARTITION BY dt, hour) AS compacted_through"
        f" FROM (SELECT * FROM {name}{filtered} OFFSET 0) AS scoped) AS lineage"
        " WHERE CASE WHEN compacted THEN commit_seq = compacted_through"
        " ELSE commit_seq > COALESCE(compacted_through, -1) END)"
    )


COMMITS_DIR = "_commits"
"""Where the processor keeps one head per run (`_commits/<run>.json`): its last committed batch
and that batch's `seq`. Every row with a commit_seq at or below the highest `seq` is committed."""

COMPACTED_PREFIX = "compacted-"


def compacted_file_name(seq: int) -> str:
    """The name of a partition's compacted file through sequence `seq`."""
    return f"{COMPACTED_PREFIX}{seq:012d}.zstd.parquet"


def compacted_file_seq(name: str) -> int | None:
    """The sequence of a compacted file's name (a path is fine); None for any other file."""
    base = name.rsplit("/", 1)[-1]
    if not base.startswith(COMPACTED_PREFIX) or not base.endswith(".zstd.parquet"):
        return None
    digits = base[len(COMPACTED_PREFIX) : -len(".zstd.parquet")]
    return int(digits) if digits.isdigit() else None
