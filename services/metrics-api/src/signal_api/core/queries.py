"""Every query of the API, written once in Athena's (Trino) dialect with `?` parameters.

User input reaches SQL only as bound parameters, and every `?` sits in a WHERE clause: Athena
accepts execution parameters nowhere else (tests/test_athena_rules.py cites the rule). Where a
value is needed outside WHERE it is spliced into the text as a validated literal, never request
text: bucket widths from `Granularity`, constants from libs/common (`_constant`) and instants the
service computed as datetimes (`_timestamp`), besides identifiers from libs/common.
Each query constrains the `dt`/`hour` partition keys so both engines prune partitions.
Timestamps are returned as epoch seconds (`to_unixtime`) so both engines yield plain numbers;
sums of bigint columns are cast back to BIGINT (DuckDB would widen them to a slower HUGEINT).
Every table is read through `visible_rows_sql`, so a compaction running under the query never
makes it count an event twice or miss one.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from signal_api.core.params import Granularity, TimeRange
from signal_common.lake import (
    COVERAGE_BY_CELL,
    COVERAGE_BY_H3,
    COVERAGE_BY_POSTAL_CODE,
    GPS_PRECISION_BY_PROVIDER,
    PIPELINE_BATCHES,
    SIGNAL_STRENGTH_BY_OPERATOR,
    STATUS_COUNT,
    LakeTable,
    visible_rows_sql,
)
from signal_common.partials import SIGNAL_HIST_BINS
from signal_common.quality import BAND_NAMES
from signal_common.schema import QUARANTINE_REASONS, Status

Param = str | int | float

_CONSTANT = re.compile(r"[A-Za-z0-9_]+")
_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3}")


def _timestamp_text(value: dt.datetime) -> str:
    """A UTC instant as Trino's TIMESTAMP text (millisecond precision)."""
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _constant(value: str) -> str:
    """A string literal of a libs/common constant (a status, a quarantine reason), spliced
    where Athena takes no `?`; a plain word only, so no request text can pass for one."""
    if not _CONSTANT.fullmatch(value):
        raise ValueError(f"not a plain constant: {value!r}")
    return f"'{value}'"


def _timestamp(value: dt.datetime) -> str:
    """A TIMESTAMP literal of an instant the service computed, spliced where Athena takes no `?`
    (the same text and cast a `ts` parameter gets; only digits can reach it)."""
    text = _timestamp_text(value)
    if not _TIMESTAMP.fullmatch(text):
        raise ValueError(f"not a timestamp: {text!r}")
    return f"CAST('{text}' AS TIMESTAMP)"


@dataclass(frozen=True)
class TableRead:
    """A table a query reads and the (dt, hour) partitions it is limited to, both inclusive: an
    engine can check that each of them can be read before it answers (a scan that skips a
    partition it cannot list would answer with a bucket missing)."""

    table: str
    first: tuple[str, int]
    last: tuple[str, int]


@dataclass(frozen=True)
class Query:
    """A Trino query text, its positional parameters and the partitions it reads."""

    name: str
    sql: str
    params: tuple[Param, ...]
    reads: tuple[TableRead, ...] = ()


class _Builder:
    """Collects parameters in the order their `?` placeholders appear in the text."""

    def __init__(self) -> None:
        self.params: list[Param] = []
        self.reads: list[TableRead] = []

    def p(self, value: Param) -> str:
        self.params.append(value)
        return "?"

    def ts(self, value: dt.datetime) -> str:
        """A timestamp parameter (UTC, millisecond precision, as Trino's TIMESTAMP)."""
        return f"CAST({self.p(_timestamp_text(value))} AS TIMESTAMP)"

    def in_list(self, column: str, values: Sequence[str]) -> str:
        """` AND column IN (?, …)` or nothing when there are no values."""
        if not values:
            return ""
        return f" AND {column} IN ({', '.join(self.p(v) for v in values)})"

    def in_partitions(self, window: TimeRange) -> str:
        """Partition pruning on dt/hour: the hour partitions that overlap the window."""
        lo_dt, lo_hour, hi_dt, hi_hour = window.partition_bounds()
        return (
            f"dt BETWEEN {self.p(lo_dt)} AND {self.p(hi_dt)}"
            f" AND (dt > {self.p(lo_dt)} OR hour >= {self.p(lo_hour)})"
            f" AND (dt < {self.p(hi_dt)} OR hour <= {self.p(hi_hour)})"
        )

    def in_range(self, time_column: str, window: TimeRange) -> str:
        """Partition pruning on dt/hour plus the exact half-open range on `time_column`."""
        return (
            self.in_partitions(window)
            + f" AND {time_column} >= {self.ts(window.start)}"
            + f" AND {time_column} < {self.ts(window.end)}"
        )

    def visible(self, table: LakeTable, where: Callable[[], str], window: TimeRange) -> str:
        """`table`'s rows a reader counts (signal_common.lake.visible_rows_sql), filtered by
        `where` (`window` is part of it, and names the partitions the query reads)."""
        lo_dt, lo_hour, hi_dt, hi_hour = window.partition_bounds()
        self.reads.append(TableRead(table.name, (lo_dt, lo_hour), (hi_dt, hi_hour)))
        return visible_rows_sql(table, where())

    def query(self, name: str, sql: str) -> Query:
        return Query(name, " ".join(sql.split()), tuple(self.params), tuple(self.reads))


def _known(aggregate: str, column: str, alias: str) -> str:
    """`aggregate` (over `column`) when every merged row has `column`, else NULL: a partial row
    written before the column existed holds null, which is unknown, never zero (SUM and
    array_agg would skip it and answer too little)."""
    return f"CASE WHEN COUNT({column}) = COUNT(*) THEN {aggregate} END AS {alias}"


def _sq_sum(column: str, *, bigint: bool = True) -> str:
    total = f"CAST(SUM({column}) AS BIGINT)" if bigint else f"SUM({column})"
    return _known(total, column, column)


# The merged rows' device sketches as text, base64 joined by commas: the API unites them (Athena
# cannot merge a DataSketches HLL; its own HLL type is another format), and text is what both
# engines return alike (Athena's result set has no binary or array values).
DEVICE_SKETCHES = _known(
    "array_join(array_agg(to_base64(devices_hll)), ',')", "devices_hll", "devices_hll"
)
# The merged rows' signal histograms as text: each row's 131 counts joined by spaces, rows
# joined by commas; the API adds them bin by bin (core/service.py says why not in SQL).
SIGNAL_HISTOGRAMS = _known(
    "array_join(array_agg(array_join(signal_hist, ' ')), ',')", "signal_hist", "signal_hist"
)


def _bucket(granularity: Granularity) -> str:
    seconds = int(granularity.seconds)  # an int from the enum, never request text
    return f"CAST(floor(to_unixtime(window_start) / {seconds}) AS BIGINT) * {seconds}"


def signal_strength(
    window: TimeRange,
    granularity: Granularity,
    *,
    operators: Sequence[str] = (),
    network_types: Sequence[str] = (),
    by_network_type: bool = True,
    histograms: bool = False,
) -> Query:
    """Σcount, Σsignal_sum, Σsignal², min, max and the device sketches per bucket × operator
    (× network type); with `histograms`, the signal histograms too."""
    b = _Builder()
    keys = "operator, network_type" if by_network_type else "operator"
    group = "1, 2, 3" if by_network_type else "1, 2"
    hist = f", {SIGNAL_HISTOGRAMS}" if histograms else ""

    def where() -> str:
        return (
            b.in_range("window_start", window)
            + b.in_list("operator", operators)
            + b.in_list("network_type", network_types)
        )

    return b.query(
        "signal_strength",
        f"""SELECT {_bucket(granularity)} AS bucket, {keys},
               CAST(SUM(event_count) AS BIGINT) AS event_count,
               CAST(SUM(signal_sum) AS BIGINT) AS signal_sum,
               MIN(signal_min) AS signal_min, MAX(signal_max) AS signal_max,
               {_sq_sum("signal_sq_sum")}, {DEVICE_SKETCHES}{hist}
            FROM {b.visible(SIGNAL_STRENGTH_BY_OPERATOR, where, window)}
            GROUP BY {group} ORDER BY {group}""",
    )


def gps_precision(
    window: TimeRange, granularity: Granularity, *, providers: Sequence[str] = ()
) -> Query:
    """Σcount, Σprecision, Σprecision², min, max, satellites sums and the device sketches per
    bucket × provider."""
    b = _Builder()

    def where() -> str:
        return b.in_range("window_start", window) + b.in_list("provider", providers)

    return b.query(
        "gps_precision",
        f"""SELECT {_bucket(granularity)} AS bucket, provider,
               CAST(SUM(event_count) AS BIGINT) AS event_count,
               SUM(precision_sum) AS precision_sum,
               MIN(precision_min) AS precision_min, MAX(precision_max) AS precision_max,
               CAST(SUM(satellites_sum) AS BIGINT) AS satellites_sum,
               CAST(SUM(satellites_count) AS BIGINT) AS satellites_count,
               {_sq_sum("precision_sq_sum", bigint=False)}, {DEVICE_SKETCHES}
            FROM {b.visible(GPS_PRECISION_BY_PROVIDER, where, window)}
            GROUP BY 1, 2 ORDER BY 1, 2""",
    )


def status_counts(
    window: TimeRange,
    granularity: Granularity,
    *,
    postal_codes: Sequence[str] = (),
    statuses: Sequence[str] = (),
    top: int | None = None,
) -> Query:
    """Σcount and the device sketches per bucket × postal code × status; optionally only the
    `top` postal codes by OUT_OF_SERVICE count over the range (ties broken by postal code)."""
    b = _Builder()

    def where() -> str:
        return (
            b.in_range("window_start", window)
            + b.in_list("postal_code", postal_codes)
            + b.in_list("status", statuses)
        )

    base = f"""SELECT {_bucket(granularity)} AS bucket, postal_code, status,
                  CAST(SUM(event_count) AS BIGINT) AS event_count, {DEVICE_SKETCHES}
               FROM {b.visible(STATUS_COUNT, where, window)} GROUP BY 1, 2, 3"""
    if top is None:
        return b.query("status_counts", f"{base} ORDER BY 1, 2, 3")
    # The status ranks inside the window's ORDER BY, where Athena takes no `?`: a libs/common
    # constant, inlined. `top` stays a parameter: it sits in the outer WHERE.
    oos = _constant(Status.OUT_OF_SERVICE.value)
    limit = b.p(int(top))
    return b.query(
        "status_counts_top",
        f"""WITH base AS ({base}),
            ranked AS (
              SELECT postal_code, ROW_NUMBER() OVER (
                ORDER BY SUM(CASE WHEN status = {oos} THEN event_count ELSE 0 END) DESC,
                         postal_code) AS rk
              FROM base GROUP BY postal_code)
            SELECT base.bucket, base.postal_code, base.status, base.event_count,
                   base.devices_hll
            FROM base JOIN ranked ON ranked.postal_code = base.postal_code
            WHERE ranked.rk <= {limit}
            ORDER BY 1, 2, 3""",
    )


def signal_quality(
    window: TimeRange, *, operators: Sequence[str] = (), network_types: Sequence[str] = ()
) -> Query:
    """Σcount, Σ per quality band and the device sketches per operator × network type over the
    range."""
    b = _Builder()

    def where() -> str:
        return (
            b.in_range("window_start", window)
            + b.in_list("operator", operators)
            + b.in_list("network_type", network_types)
        )

    bands = ", ".join(f"SUM(band_{band}_count) AS band_{band}_count" for band in BAND_NAMES)
    return b.query(
        "signal_quality",
        f"""SELECT operator, network_type, SUM(event_count) AS event_count, {bands},
               {DEVICE_SKETCHES}
            FROM {b.visible(SIGNAL_STRENGTH_BY_OPERATOR, where, window)}
            GROUP BY 1, 2 ORDER BY 1, 2""",
    )


def coverage(
    window: TimeRange, *, postal_codes: Sequence[str] = (), histograms: bool = False
) -> Query:
    """Coverage sums, Σsignal² and the device sketches per postal code over the range; with
    `histograms`, the signal histograms too."""
    b = _Builder()

    def where() -> str:
        return b.in_range("window_start", window) + b.in_list("postal_code", postal_codes)

    hist = f", {SIGNAL_HISTOGRAMS}" if histograms else ""
    return b.query(
        "coverage",
        f"""SELECT postal_code, SUM(event_count) AS event_count,
               SUM(latitude_sum) AS latitude_sum, SUM(longitude_sum) AS longitude_sum,
               SUM(signal_sum) AS signal_sum, SUM(out_of_service_count) AS out_of_service_count,
               {_sq_sum("signal_sq_sum")}, {DEVICE_SKETCHES}{hist}
            FROM {b.visible(COVERAGE_BY_POSTAL_CODE, where, window)}
            GROUP BY 1 ORDER BY 1""",
    )


def coverage_h3(window: TimeRange, resolution: int) -> Query:
    """Per H3 cell of `resolution` over the range: Σcount, Σsignal, Σsignal², Σout-of-service,
    Σ per quality band, the device sketches and the signal histograms."""
    b = _Builder()

    def where() -> str:
        return b.in_range("window_start", window) + f" AND h3_resolution = {b.p(int(resolution))}"

    bands = ", ".join(
        f"CAST(SUM(band_{band}_count) AS BIGINT) AS band_{band}_count" for band in BAND_NAMES
    )
    return b.query(
        "coverage_h3",
        f"""SELECT h3_cell, CAST(SUM(event_count) AS BIGINT) AS event_count,
               CAST(SUM(signal_sum) AS BIGINT) AS signal_sum,
               CAST(SUM(out_of_service_count) AS BIGINT) AS out_of_service_count, {bands},
               {_sq_sum("signal_sq_sum")}, {DEVICE_SKETCHES}, {SIGNAL_HISTOGRAMS}
            FROM {b.visible(COVERAGE_BY_H3, where, window)}
            GROUP BY 1 ORDER BY 1""",
    )


# The merged histogram of each group, bin by bin in SQL, as text (131 counts joined by spaces):
# one row per serving cell however many hourly partials it merges (the API ranks every cell).
MERGED_HISTOGRAM = _known(
    "array_join(ARRAY["
    + ", ".join(f"SUM(signal_hist[{i}])" for i in range(1, SIGNAL_HIST_BINS + 1))
    + "], ' ')",
    "signal_hist",
    "signal_hist",
)


def cells(window: TimeRange) -> Query:
    """Per serving cell (operator, network type, cell_id) over the range: Σcount, Σlat, Σlon,
    Σsignal, Σsignal², Σout-of-service, the device sketches and the merged histogram."""
    b = _Builder()

    def where() -> str:
        return b.in_range("window_start", window)

    return b.query(
        "cells",
        f"""SELECT operator, network_type, cell_id, CAST(SUM(event_count) AS BIGINT) AS event_count,
               SUM(latitude_sum) AS latitude_sum, SUM(longitude_sum) AS longitude_sum,
               CAST(SUM(signal_sum) AS BIGINT) AS signal_sum,
               CAST(SUM(out_of_service_count) AS BIGINT) AS out_of_service_count,
               {_sq_sum("signal_sq_sum")}, {DEVICE_SKETCHES}, {MERGED_HISTOGRAM}
            FROM {b.visible(COVERAGE_BY_CELL, where, window)}
            GROUP BY 1, 2, 3 ORDER BY 1, 2, 3""",
    )


def _newest(name: str, table: LakeTable, column: str, alias: str, window: TimeRange) -> Query:
    """The newest `column` value of `table`'s rows in the range (epoch seconds, or NULL)."""
    b = _Builder()

    def where() -> str:
        return b.in_range(column, window)

    return b.query(
        name,
        f"""SELECT to_unixtime(MAX({column})) AS {alias}
            FROM {b.visible(table, where, window)}""",
    )


def latest_window(window: TimeRange) -> Query:
    """The newest window start with data in the range (epoch seconds, or NULL)."""
    return _newest("latest_window", SIGNAL_STRENGTH_BY_OPERATOR, "window_start", "latest", window)


def window_totals(window: TimeRange) -> Query:
    """Σcount, Σsignal and Σsignal² (signal table), Σcount and Σout-of-service (coverage) in a
    range."""
    b = _Builder()

    def where_signal() -> str:
        return b.in_range("window_start", window)

    def where_coverage() -> str:
        return b.in_range("window_start", window)

    return b.query(
        "window_totals",
        f"""SELECT s.event_count, s.signal_sum, s.signal_sq_sum, c.coverage_count,
                   c.out_of_service_count
            FROM (SELECT SUM(event_count) AS event_count, SUM(signal_sum) AS signal_sum,
                         {_sq_sum("signal_sq_sum")}
                  FROM {b.visible(SIGNAL_STRENGTH_BY_OPERATOR, where_signal, window)}) s
            CROSS JOIN
                 (SELECT SUM(event_count) AS coverage_count,
                         SUM(out_of_service_count) AS out_of_service_count
                  FROM {b.visible(COVERAGE_BY_POSTAL_CODE, where_coverage, window)}) c""",
    )


def pipeline(window: TimeRange) -> Query:
    """Batch totals, freshness and quarantined rows per known reason over a batch-time range."""
    b = _Builder()
    # The map keys sit in the select list, where Athena takes no `?`: the reasons are
    # libs/common constants, inlined as literals.
    reasons = ", ".join(
        f"SUM(COALESCE(element_at(quarantined_by_reason, {_constant(reason)}), 0)) AS q_{i}"
        for i, reason in enumerate(QUARANTINE_REASONS)
    )

    def where() -> str:
        return b.in_range("batch_time", window)

    return b.query(
        "pipeline",
        f"""SELECT COUNT(*) AS batches, SUM(rows_in) AS rows_in, SUM(valid_rows) AS valid_rows,
               SUM(quarantined_rows) AS quarantined_rows,
               SUM(duplicates_removed) AS duplicates_removed,
               SUM(late_dropped) AS late_dropped,
               max_by(millis_behind_latest, batch_time) AS millis_behind_latest,
               MAX(millis_behind_latest) AS max_millis_behind_latest,
               SUM(processing_ms) AS processing_ms, MAX(max_lateness_s) AS max_lateness_s,
               to_unixtime(MAX(batch_time)) AS newest_batch_time,
               to_unixtime(MIN(batch_time)) AS oldest_batch_time,
               min_by(valid_rows, batch_time) AS first_batch_valid_rows,
               to_unixtime(MAX(max_event_time)) AS newest_event_time, {reasons}
            FROM {b.visible(PIPELINE_BATCHES, where, window)}""",
    )


def lake_state(window: TimeRange) -> Query:
    """The newest committed batch's time and the data's watermark in a batch-time range (epoch
    seconds, or NULL when it has no batch). The watermark is the newest event time of any batch,
    each batch's capped at its own batch time: an event dated after the batch that processed it
    comes from a clock ahead, not from a later moment. A CASE, not LEAST: DuckDB's LEAST skips a
    NULL max_event_time (a batch without valid events) where Trino's returns NULL."""
    b = _Builder()

    def where() -> str:
        return b.in_range("batch_time", window)

    return b.query(
        "lake_state",
        f"""SELECT to_unixtime(MAX(batch_time)) AS newest_batch_time,
               to_unixtime(MAX(CASE WHEN max_event_time > batch_time THEN batch_time
                                    ELSE max_event_time END)) AS watermark
            FROM {b.visible(PIPELINE_BATCHES, where, window)}""",
    )


def newest_batch(window: TimeRange) -> Query:
    """The newest batch time in a batch-time range (epoch seconds, or NULL when it has none):
    the readiness probe, reading only the newest pipeline_batches partitions."""
    return _newest("newest_batch", PIPELINE_BATCHES, "batch_time", "newest_batch_time", window)


def ping() -> Query:
    """A trivial query proving the engine answers."""
    return Query("ping", "SELECT 1 AS ok", ())


def all_example_queries(now: dt.datetime) -> list[Query]:
    """One instance of every query (used to prove each transpiles and runs)."""
    window = TimeRange(now - dt.timedelta(hours=2), now)
    g = Granularity.M5
    return [
        signal_strength(window, g, operators=("a", "b"), network_types=("4G",)),
        signal_strength(window, g, by_network_type=False),
        signal_strength(window, g, histograms=True),
        gps_precision(window, g, providers=("gps",)),
        status_counts(window, g, postal_codes=("1000",), statuses=("IN_SERVICE",)),
        status_counts(window, g, top=3),
        signal_quality(window, operators=("a",)),
        coverage(window, postal_codes=("1000",)),
        coverage(window, histograms=True),
        coverage_h3(window, 9),
        cells(window),
        latest_window(window),
        window_totals(window),
        pipeline(window),
        newest_batch(window),
        lake_state(window),
        ping(),
    ]
