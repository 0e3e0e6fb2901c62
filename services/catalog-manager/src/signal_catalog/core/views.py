"""One readable view per KPI table: the partial rows merged into KPIs per window (a minute; an
hour for coverage_by_h3, whose view is `coverage_by_h3_per_hour`).

Analysts querying the lake in Athena see partial aggregates (sums, counts, batch ids, lineage).
The view `<table>_per_minute` reads the table through the compaction reader rule
(signal_common.lake.visible_rows_sql) and merges it to one row per window and key: counts added,
averages as Σsum / Σcount, minima and maxima kept, and on the tables with a signal histogram the
exact median `signal_p50` (nearest rank) from the minute's merged histogram. It is stored in
Glue as an Athena (`VIRTUAL_VIEW`, Presto view text) table; the same SQL runs on DuckDB through
sqlglot.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from signal_common.lake import KPI_TABLES, LakeTable, visible_rows_sql
from signal_common.partials import SIGNAL_HIST_BINS, SIGNAL_HIST_MIN

P50 = "signal_p50"
# The minute's merged histogram, element by element (one scan: the reader rule's window function
# must stay the only scan of the table); null when any partial row of the minute has none.
_MERGED_HISTOGRAM = (
    "CASE WHEN COUNT(signal_hist) = COUNT(*) THEN ARRAY["
    + ", ".join(f"SUM(signal_hist[{i}])" for i in range(1, SIGNAL_HIST_BINS + 1))
    + "] END"
)
# Nearest rank: the first bin whose cumulative count c reaches ceil(n / 2), i.e. the number of
# bins with c < n / 2 (2c < n in integers) past the first bin's value. Trino array and lambda
# functions (https://trino.io/docs/current/functions/array.html: sequence, transform, reduce,
# slice, filter, cardinality), which Athena engine 3 runs.
_P50_SQL = (
    f"CAST(CASE WHEN event_count > 0 THEN {SIGNAL_HIST_MIN} + cardinality(filter("
    "transform(sequence(1, cardinality(signal_hist)), i -> reduce(slice(signal_hist, 1, i), "
    "BIGINT '0', (s, x) -> s + x, s -> s)), c -> 2 * c < event_count)) END AS INTEGER)"
)

# per table: average column -> (sum column, count column); the sums they use are not repeated
AVERAGES: dict[str, dict[str, tuple[str, str]]] = {
    "signal_strength_by_operator": {"signal_avg": ("signal_sum", "event_count")},
    "gps_precision_by_provider": {
        "precision_avg": ("precision_sum", "event_count"),
        "satellites_avg": ("satellites_sum", "satellites_count"),
    },
    "status_count": {},
    "coverage_by_postal_code": {
        "latitude": ("latitude_sum", "event_count"),
        "longitude": ("longitude_sum", "event_count"),
        "signal_avg": ("signal_sum", "event_count"),
    },
    "coverage_by_h3": {"signal_avg": ("signal_sum", "event_count")},
    "coverage_by_cell": {
        "latitude": ("latitude_sum", "event_count"),
        "longitude": ("longitude_sum", "event_count"),
        "signal_avg": ("signal_sum", "event_count"),
    },
}

_PRESTO_TYPES = {
    "string": "varchar",
    "bigint": "bigint",
    "int": "integer",
    "double": "double",
    "timestamp": "timestamp",
}


@dataclass(frozen=True)
class ViewColumn:
    """A column of a KPI view: its SQL expression and types."""

    name: str
    expression: str
    hive_type: str
    description: str

    @property
    def presto_type(self) -> str:
        return _PRESTO_TYPES[self.hive_type]


def view_name(table: LakeTable) -> str:
    """The view of a KPI table, named by its window: `status_count_per_minute`,
    `coverage_by_h3_per_hour`."""
    return f"{table.name}_per_{table.window_unit}"


def view_columns(table: LakeTable) -> list[ViewColumn]:
    """Keys, then counts, averages, minima and maxima, then the partition keys."""
    averages = AVERAGES[table.name]
    hidden = {s for s, _ in averages.values()} | {
        c for _, c in averages.values() if c != "event_count"
    }
    keys = [c for c in table.data_columns if c.merge == "key" and c.name != "batch_id"]
    columns = [ViewColumn(c.name, c.name, c.hive_type, c.description) for c in keys]
    for c in table.data_columns:
        if c.merge == "sum" and c.name not in hidden:
            expr = f"CAST(SUM({c.name}) AS BIGINT)" if c.hive_type == "bigint" else f"SUM({c.name})"
            columns.append(ViewColumn(c.name, expr, c.hive_type, c.description))
    for name, (total, count) in averages.items():
        columns.append(
            ViewColumn(
                name,
                f"CAST(SUM({total}) AS DOUBLE) / NULLIF(SUM({count}), 0)",
                "double",
                f"Average: sum of {total} / sum of {count} (null when {count} is 0).",
            )
        )
    if "signal_hist" in table.column_names:
        columns.append(
            ViewColumn(
                P50,
                _P50_SQL,
                "int",
                "Median signal_dbm of the window and key (nearest rank, exact, from the merged "
                "131-bin histogram); null when a partial row older than the histogram is in it.",
            )
        )
    for c in table.data_columns:
        if c.merge in ("min", "max"):
            columns.append(
                ViewColumn(c.name, f"{c.merge.upper()}({c.name})", c.hive_type, c.description)
            )
    columns += [
        ViewColumn(c.name, c.name, c.hive_type, c.description) for c in table.partition_keys
    ]
    return columns


def view_sql(table: LakeTable) -> str:
    """The view's query in Athena's (Trino) dialect."""
    columns = view_columns(table)
    groups = [c.name for c in columns if c.expression == c.name]
    inner = [c for c in columns if c.name != P50]
    select = ", ".join(
        c.name if c.expression == c.name else f"{c.expression} AS {c.name}" for c in inner
    )
    if len(inner) == len(columns):
        return f"SELECT {select} FROM {visible_rows_sql(table)} GROUP BY {', '.join(groups)}"
    # the median needs the minute's merged histogram: merge, then read it (still one scan)
    merged = (
        f"SELECT {select}, {_MERGED_HISTOGRAM} AS signal_hist FROM {visible_rows_sql(table)} "
        f"GROUP BY {', '.join(groups)}"
    )
    outer = ", ".join(f"{c.expression} AS {c.name}" if c.name == P50 else c.name for c in columns)
    return f"SELECT {outer} FROM ({merged}) AS merged"


def view_table_input(table: LakeTable, database: str) -> dict[str, Any]:
    """The Glue TableInput of the view: an Athena view (Presto view text, base64 JSON)."""
    columns = view_columns(table)
    presto = {
        "originalSql": view_sql(table),
        "catalog": "awsdatacatalog",
        "schema": database,
        "columns": [{"name": c.name, "type": c.presto_type} for c in columns],
    }
    encoded = base64.b64encode(json.dumps(presto).encode()).decode()
    return {
        "Name": view_name(table),
        "Description": f"Per-minute KPIs of {table.name} (partials merged; compaction-safe).",
        "TableType": "VIRTUAL_VIEW",
        "Parameters": {"presto_view": "true", "comment": "Presto View"},
        "ViewOriginalText": f"/* Presto View: {encoded} */",
        "ViewExpandedText": "/* Presto View */",
        "StorageDescriptor": {
            "Columns": [
                {"Name": c.name, "Type": c.hive_type, "Comment": c.description[:255]}
                for c in columns
            ],
            "SerdeInfo": {},
        },
        "PartitionKeys": [],
    }


def kpi_views(tables: list[LakeTable]) -> list[LakeTable]:
    """The tables of `tables` that get a view (the KPI tables)."""
    return [t for t in tables if t in KPI_TABLES]
