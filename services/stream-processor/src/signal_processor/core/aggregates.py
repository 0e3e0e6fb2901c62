"""Transforms (Arrow table -> Arrow table) from validated records to the lake tables.

The Spark query validates and deduplicates the stream; each partition of a micro-batch then
runs these pure functions on the executor that holds it (`adapters.partition_writer`): its
records become that partition's `events` and `quarantine` rows, its KPI partials
(`kpi_partials`) and its quality figures (`batch_quality`). The driver receives only those
partials and figures, O(windows x keys) rows per partition, and folds them with
`merge_partials` and `merge_quality` into what one pass over the whole batch would give: counts
and sums add up, minima and maxima fold, per-reason counts add up (the merge rule of each column
is the lake's, `Column.merge`). Vectorised Arrow kernels on partitions cost a fraction of one
Spark aggregation job per table (measured: 0.7 s against 3.3 s for a 100k-record batch).

KPI tables hold *mergeable partial aggregates* per event-time window (1 minute; 1 hour for
coverage_by_h3, `LakeTable.window`) and key, written by
each micro-batch: count, sum, min, max and quality-band counts, sums of squares (intervals), an
exact sparse histogram of signal_dbm (percentiles) and an HLL sketch of device ids (distinct
devices). Readers merge partials at any granularity (avg = Σsum/Σcount, histograms add, sketches
union), so a late event lands in its own window whenever it arrives and every average and
percentile stays exact. All times are UTC.
"""

from __future__ import annotations

import datetime as dt
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from signal_common import partials
from signal_common.lake import (
    COVERAGE_BY_CELL,
    COVERAGE_BY_H3,
    COVERAGE_BY_POSTAL_CODE,
    EVENTS,
    GPS_PRECISION_BY_PROVIDER,
    H3_RESOLUTIONS,
    QUARANTINE,
    SIGNAL_STRENGTH_BY_OPERATOR,
    STATUS_COUNT,
    LakeTable,
    table_arrow_schema,
)
from signal_common.quality import BAND_NAMES, QualityBands
from signal_processor.core import hexagons

_NAIVE_US = pa.timestamp("us")
_UTC_US = pa.timestamp("us", tz="UTC")


def conform(data: pa.Table, table: LakeTable) -> pa.Table:
    """The table's columns and partition keys, in layout order, cast to the layout's types."""
    schema = table_arrow_schema(table, with_partitions=True, with_lineage=False)
    return pa.Table.from_arrays([data[f.name].cast(f.type) for f in schema], schema=schema)


def with_partition(data: pa.Table, ts_column: str) -> pa.Table:
    """Add `dt` ('YYYY-MM-DD') and `hour` (0-23) partition columns from a UTC timestamp."""
    wall = data[ts_column].cast(_UTC_US).cast(_NAIVE_US)  # UTC wall clock, zone-independent
    day = wall.cast(pa.date32()).cast(pa.string())  # ISO 8601, as strftime("%Y-%m-%d")
    return data.append_column("dt", day).append_column("hour", pc.hour(wall).cast(pa.int32()))


def with_window(events: pa.Table, table: LakeTable | None = None) -> pa.Table:
    """Add the tumbling event-time window of `table` (1 minute by default; `LakeTable.window`)
    as `window_start`, `window_end`, and its partition (`dt`, `hour`: those of the window start,
    which are those of the event time). Replaces a window the events already carry."""
    window = dt.timedelta(minutes=1) if table is None else table.window
    unit = "minute" if table is None else table.window_unit
    events = events.drop_columns(
        [c for c in ("window_start", "window_end", "dt", "hour") if c in events.column_names]
    )
    wall = events["event_time"].cast(_UTC_US).cast(_NAIVE_US)
    start = pc.floor_temporal(wall, unit=unit).cast(_UTC_US)
    length = pa.scalar(window, type=pa.duration("us"))
    windowed = events.append_column("window_start", start).append_column(
        "window_end", pc.add(start, length)
    )
    return with_partition(windowed, "window_start")


def band_masks(events: pa.Table, bands: Mapping[str, QualityBands]) -> dict[str, pa.Array]:
    """Per band, whether each event's signal_dbm falls in it (for its network type).

    An event whose network type has no bands is in none of them.
    """
    networks = list(bands)
    index = pc.index_in(events["network_type"], value_set=pa.array(networks, pa.string()))

    def bound(attribute: str) -> pa.Array:
        values = pa.array([getattr(bands[n], attribute) for n in networks], pa.int64())
        return pc.take(values, index)

    signal = events["signal_dbm"].cast(pa.int64())
    at_least = {
        "excellent": pc.greater_equal(signal, bound("excellent_min")),
        "good": pc.greater_equal(signal, bound("good_min")),
        "fair": pc.greater_equal(signal, bound("fair_min")),
    }
    known = pc.is_valid(index)
    masks = {
        "excellent": at_least["excellent"],
        "good": pc.and_not(at_least["good"], at_least["excellent"]),
        "fair": pc.and_not(at_least["fair"], at_least["good"]),
        "poor": pc.and_not(known, at_least["fair"]),
    }
    assert set(masks) == set(BAND_NAMES)
    return {band: pc.fill_null(mask, False) for band, mask in masks.items()}


def valid_events(validated: pa.Table) -> pa.Table:
    """The valid records of a validated batch."""
    return validated.filter(pc.field("is_valid"))


def quarantined_records(validated: pa.Table) -> pa.Table:
    """The invalid records of a validated batch."""
    return validated.filter(~pc.field("is_valid"))


def events_table(validated: pa.Table) -> pa.Table:
    """Rows of the `events` table: clean, deduplicated events, partitioned by event time."""
    return conform(with_partition(valid_events(validated), "event_time"), EVENTS)


def quarantine_table(validated: pa.Table, batch_id: int) -> pa.Table:
    """Rows of the `quarantine` table, partitioned by arrival time."""
    rows = quarantined_records(validated)
    rows = rows.append_column("batch_id", pa.repeat(pa.scalar(batch_id, pa.int64()), len(rows)))
    return conform(with_partition(rows, "arrival_time"), QUARANTINE)


_GROUP = ("window_start", "window_end", "dt", "hour")


def _partials(
    events: pa.Table,
    batch_id: int,
    keys: Sequence[str],
    aggregations: Sequence[tuple[str, str, str]],
    table: LakeTable,
    *,
    histograms: Sequence[tuple[str, str]] = (),
) -> pa.Table:
    """Group events by window and `keys`; `aggregations` are (column, function, output name),
    `histograms` (integer column, output name). Every table also gets `devices_hll`, the sketch
    of its groups' distinct device ids (signal_common.partials).

    `events` may already carry `with_window`'s columns (computed once for every KPI table).
    """
    framed = events if "window_start" in events.column_names else with_window(events)
    group = [*_GROUP, *keys]
    indexed = framed.append_column("_row", pa.array(np.arange(len(framed), dtype=np.int64)))
    grouped = indexed.group_by(group, use_threads=False).aggregate(
        [([], "count_all"), *((column, fn) for column, fn, _ in aggregations), ("_row", "list")]
    )
    names = {"count_all": "event_count"}
    names.update({f"{column}_{fn}": out for column, fn, out in aggregations})
    grouped = grouped.rename_columns([names.get(c, c) for c in grouped.column_names])
    rows = partials.row_groups(grouped["_row_list"], len(framed))
    for column, out in histograms:
        grouped = grouped.append_column(
            out, partials.histograms(framed[column], rows, grouped.num_rows)
        )
    grouped = grouped.append_column(
        "devices_hll", partials.device_sketches(framed["device_id"], rows, grouped.num_rows)
    )
    grouped = grouped.append_column(
        "batch_id", pa.repeat(pa.scalar(batch_id, pa.int64()), len(grouped))
    )
    ordered = grouped.sort_by([(k, "ascending") for k in group])
    return conform(ordered, table)


def _squared(values: pa.ChunkedArray | pa.Array, arrow_type: pa.DataType) -> pa.ChunkedArray:
    cast = values.cast(arrow_type)
    return pc.multiply_checked(cast, cast)


def signal_strength_partials(
    events: pa.Table, bands: Mapping[str, QualityBands], batch_id: int
) -> pa.Table:
    """Partials per window, operator and network type: count, sum/min/max signal, band counts."""
    return _partials(
        _with_bands(events, bands),
        batch_id,
        ("operator", "network_type"),
        [
            ("signal_dbm", "sum", "signal_sum"),
            ("signal_dbm", "min", "signal_min"),
            ("signal_dbm", "max", "signal_max"),
            *((f"band_{b}", "sum", f"band_{b}_count") for b in BAND_NAMES),
            ("signal_sq", "sum", "signal_sq_sum"),
        ],
        SIGNAL_STRENGTH_BY_OPERATOR,
        histograms=[("signal_dbm", "signal_hist")],
    )


def gps_precision_partials(events: pa.Table, batch_id: int) -> pa.Table:
    """Partials per window and provider: count, sum/min/max precision, satellites sum/count."""
    # events without satellites count 0 towards the sum and are not counted in satellites_count
    with_sats = events.append_column(
        "satellites_or_zero", pc.fill_null(events["satellites"].cast(pa.int64()), 0)
    ).append_column("precision_sq", _squared(events["gps_precision_m"], pa.float64()))
    return _partials(
        with_sats,
        batch_id,
        ("provider",),
        [
            ("gps_precision_m", "sum", "precision_sum"),
            ("gps_precision_m", "min", "precision_min"),
            ("gps_precision_m", "max", "precision_max"),
            ("satellites_or_zero", "sum", "satellites_sum"),
            ("satellites", "count", "satellites_count"),
            ("precision_sq", "sum", "precision_sq_sum"),
        ],
        GPS_PRECISION_BY_PROVIDER,
    )


def status_count_partials(events: pa.Table, batch_id: int) -> pa.Table:
    """Partial counts per window, postal code and status."""
    return _partials(events, batch_id, ("postal_code", "status"), [], STATUS_COUNT)


def coverage_partials(events: pa.Table, batch_id: int) -> pa.Table:
    """Partials per window and postal code: count, lat/lon sums, signal sum, out-of-service."""
    out_of_service = pc.equal(events["status"], "OUT_OF_SERVICE").cast(pa.int64())
    return _partials(
        events.append_column("out_of_service", out_of_service).append_column(
            "signal_sq", _squared(events["signal_dbm"], pa.int64())
        ),
        batch_id,
        ("postal_code",),
        [
            ("latitude", "sum", "latitude_sum"),
            ("longitude", "sum", "longitude_sum"),
            ("signal_dbm", "sum", "signal_sum"),
            ("out_of_service", "sum", "out_of_service_count"),
            ("signal_sq", "sum", "signal_sq_sum"),
        ],
        COVERAGE_BY_POSTAL_CODE,
        histograms=[("signal_dbm", "signal_hist")],
    )


def _with_bands(events: pa.Table, bands: Mapping[str, QualityBands]) -> pa.Table:
    """`events` with `signal_sq` and one 0/1 column `band_<band>` per quality band."""
    masks = band_masks(events, bands)
    banded = events.append_column("signal_sq", _squared(events["signal_dbm"], pa.int64()))
    for band in BAND_NAMES:
        banded = banded.append_column(f"band_{band}", masks[band].cast(pa.int64()))
    return banded


def coverage_h3_partials(
    events: pa.Table, bands: Mapping[str, QualityBands], batch_id: int
) -> pa.Table:
    """Partials per hour (the table's window) and H3 cell, at each of H3_RESOLUTIONS (every
    event once per resolution): count, signal sum, out-of-service count, band counts, Σsignal²,
    histogram."""
    events = with_window(events, COVERAGE_BY_H3)
    banded = _with_bands(events, bands).append_column(
        "out_of_service", pc.equal(events["status"], "OUT_OF_SERVICE").cast(pa.int64())
    )
    cells = hexagons.cells_at(events["latitude"], events["longitude"], H3_RESOLUTIONS)
    per_resolution = [
        banded.append_column(
            "h3_resolution", pa.repeat(pa.scalar(res, pa.int32()), len(banded))
        ).append_column("h3_cell", cells[res])
        for res in H3_RESOLUTIONS
    ]
    return _partials(
        pa.concat_tables(per_resolution),
        batch_id,
        ("h3_resolution", "h3_cell"),
        [
            ("signal_dbm", "sum", "signal_sum"),
            ("out_of_service", "sum", "out_of_service_count"),
            *((f"band_{b}", "sum", f"band_{b}_count") for b in BAND_NAMES),
            ("signal_sq", "sum", "signal_sq_sum"),
        ],
        COVERAGE_BY_H3,
        histograms=[("signal_dbm", "signal_hist")],
    )


def coverage_cell_partials(events: pa.Table, batch_id: int) -> pa.Table:
    """Partials per hour (the table's window) and serving cell (operator, network type,
    cell_id) of the events that report a cell_id: count, lat/lon sums, signal sum,
    out-of-service count, Σsignal², histogram. Empty when no event reports one."""
    reporting = events.filter(pc.is_valid(events["cell_id"]))
    if not len(reporting):
        return table_arrow_schema(
            COVERAGE_BY_CELL, with_partitions=True, with_lineage=False
        ).empty_table()
    reporting = with_window(reporting, COVERAGE_BY_CELL)
    return _partials(
        reporting.append_column(
            "out_of_service", pc.equal(reporting["status"], "OUT_OF_SERVICE").cast(pa.int64())
        ).append_column("signal_sq", _squared(reporting["signal_dbm"], pa.int64())),
        batch_id,
        ("operator", "network_type", "cell_id"),
        [
            ("latitude", "sum", "latitude_sum"),
            ("longitude", "sum", "longitude_sum"),
            ("signal_dbm", "sum", "signal_sum"),
            ("out_of_service", "sum", "out_of_service_count"),
            ("signal_sq", "sum", "signal_sq_sum"),
        ],
        COVERAGE_BY_CELL,
        histograms=[("signal_dbm", "signal_hist")],
    )


@dataclass(frozen=True)
class BatchQuality:
    """What a validated batch held: valid rows, quarantined rows per reason, freshness."""

    valid_rows: int
    quarantined_by_reason: dict[str, int] = field(default_factory=dict)
    max_lateness_s: float | None = None
    max_event_time: dt.datetime | None = None

    @property
    def quarantined_rows(self) -> int:
        return sum(self.quarantined_by_reason.values())


def batch_quality(validated: pa.Table) -> BatchQuality:
    """Valid rows, quarantined rows per reason, max lateness (s) and newest event time."""
    events = valid_events(validated)
    rejected = quarantined_records(validated)["reason"]
    by_reason = {
        str(item["values"]): int(item["counts"]) for item in pc.value_counts(rejected).to_pylist()
    }
    if not len(events):
        return BatchQuality(0, dict(sorted(by_reason.items())))
    arrival = events["arrival_time"].cast(_UTC_US).cast(pa.int64())
    event_time = events["event_time"].cast(_UTC_US)
    lateness_us = pc.max(pc.subtract(arrival, event_time.cast(pa.int64()))).as_py()
    return BatchQuality(
        valid_rows=len(events),
        quarantined_by_reason=dict(sorted(by_reason.items())),
        max_lateness_s=lateness_us / 1_000_000,
        max_event_time=pc.max(event_time).as_py(),
    )


def kpi_partials(
    validated: pa.Table, bands: Mapping[str, QualityBands], batch_id: int
) -> dict[str, pa.Table]:
    """Every KPI table's partials of a validated table (none when it holds no valid event)."""
    events = with_window(valid_events(validated))  # shared by the KPI tables
    if not len(events):
        return {}
    return {
        SIGNAL_STRENGTH_BY_OPERATOR.name: signal_strength_partials(events, bands, batch_id),
        GPS_PRECISION_BY_PROVIDER.name: gps_precision_partials(events, batch_id),
        STATUS_COUNT.name: status_count_partials(events, batch_id),
        COVERAGE_BY_POSTAL_CODE.name: coverage_partials(events, batch_id),
        COVERAGE_BY_H3.name: coverage_h3_partials(events, bands, batch_id),
        COVERAGE_BY_CELL.name: coverage_cell_partials(events, batch_id),
    }


def merge_partials(parts: Sequence[pa.Table], table: LakeTable) -> pa.Table:
    """Fold partials of the same batch (one table per partition) into one row per window and
    key, as `_partials` over all their events gives: sums and counts add up, minima and maxima
    fold, histograms add, device sketches union (each column by its lake merge rule,
    `signal_common.partials.fold_partials`). Rows ordered as `_partials` orders them."""
    schema = table_arrow_schema(table, with_partitions=True, with_lineage=False)
    if not parts:
        return schema.empty_table()
    data = pa.concat_tables([conform(p, table) for p in parts])
    columns = [c for c in table.data_columns + table.partition_keys]
    keys = [c.name for c in columns if c.merge == "key"]
    merged = partials.fold_partials(data, keys, [c for c in columns if c.merge != "key"])
    order = [*_GROUP, *(k for k in keys if k not in _GROUP and k != "batch_id")]
    return conform(merged.sort_by([(k, "ascending") for k in order]), table)


def key_buckets(rows: pa.Table, table: LakeTable, buckets: int) -> list[pa.Table]:
    """`rows` (partials of `table`) split into `buckets` tables by a hash of each row's key (its
    window, its key columns and partition keys), the same bucket for the same key in every
    process: rows that `merge_partials` folds together always land in the same bucket."""
    if buckets <= 1:
        return [rows]
    keys = [c.name for c in (*table.data_columns, *table.partition_keys) if c.merge == "key"]
    text = pc.binary_join_element_wise(
        *(pc.fill_null(pc.cast(rows[k], pa.string()), "\x00") for k in keys), "\x1f"
    )
    hashes = np.fromiter(
        (zlib.crc32(v.encode()) for v in text.to_pylist()), dtype=np.int64, count=rows.num_rows
    )
    which = pa.array(hashes % buckets)
    return [rows.filter(pc.equal(which, b)) for b in range(buckets)]


def merge_quality(parts: Iterable[BatchQuality]) -> BatchQuality:
    """The quality figures of a batch from those of its partitions."""
    parts = list(parts)
    by_reason: dict[str, int] = {}
    for part in parts:
        for reason, count in part.quarantined_by_reason.items():
            by_reason[reason] = by_reason.get(reason, 0) + count
    lateness = [p.max_lateness_s for p in parts if p.max_lateness_s is not None]
    newest = [p.max_event_time for p in parts if p.max_event_time is not None]
    return BatchQuality(
        valid_rows=sum(p.valid_rows for p in parts),
        quarantined_by_reason=dict(sorted(by_reason.items())),
        max_lateness_s=max(lateness) if lateness else None,
        max_event_time=max(newest) if newest else None,
    )


def quality_to_json(quality: BatchQuality) -> dict[str, Any]:
    """`quality` as JSON values (what a partition's task sends to the driver)."""
    newest = quality.max_event_time
    return {
        "valid_rows": quality.valid_rows,
        "quarantined_by_reason": quality.quarantined_by_reason,
        "max_lateness_s": quality.max_lateness_s,
        "max_event_time": None if newest is None else newest.isoformat(),
    }


def quality_from_json(value: Mapping[str, Any]) -> BatchQuality:
    """The inverse of `quality_to_json` (exact: ISO 8601 keeps microseconds)."""
    newest = value["max_event_time"]
    return BatchQuality(
        valid_rows=int(value["valid_rows"]),
        quarantined_by_reason={str(k): int(v) for k, v in value["quarantined_by_reason"].items()},
        max_lateness_s=value["max_lateness_s"],
        max_event_time=None if newest is None else dt.datetime.fromisoformat(newest),
    )
