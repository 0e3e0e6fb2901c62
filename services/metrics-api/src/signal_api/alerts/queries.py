"""The evaluator's two queries, in Athena's (Trino) dialect like signal_api.core.queries.

Both bucket rows into the rules' epoch-aligned windows. Every `?` sits in a WHERE clause
(Athena's rule); what the select list needs (bucket width, the split timestamps, network types
and hole thresholds) is spliced as literals derived from the rules and libs/common, never from
request text. tests/test_alert_athena.py checks both against test_athena_rules' checker.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from signal_api.core.params import TimeRange
from signal_api.core.queries import Query, _Builder, _constant, _timestamp
from signal_common.lake import COVERAGE_BY_POSTAL_CODE, EVENTS
from signal_common.quality import QualityBands

MIDDLE_BUCKET = -1
"""The bucket of coverage rows every evaluated window's baseline holds (summed once)."""


def _window_bucket(column: str, window_s: int) -> str:
    seconds = int(window_s)  # an int from the rules, never request text
    return f"CAST(floor(to_unixtime({column}) / {seconds}) AS BIGINT) * {seconds}"


def coverage_windows(scan: TimeRange, middle: TimeRange | None, *, window_s: int) -> Query:
    """Per postal code and window bucket (epoch seconds of its start) over `scan`: events,
    out-of-service events and the signal sum; rows in `middle` (the span every evaluated
    window's baseline covers) are summed into one bucket, MIDDLE_BUCKET, to keep the answer
    small (about 40 rows per postal code for a 24 h baseline instead of 300)."""
    b = _Builder()
    bucket = _window_bucket("window_start", window_s)
    if middle is not None:
        bucket = (
            f"CASE WHEN window_start >= {_timestamp(middle.start)}"
            f" AND window_start < {_timestamp(middle.end)} THEN {MIDDLE_BUCKET}"
            f" ELSE {bucket} END"
        )

    def where() -> str:
        return b.in_range("window_start", scan)

    return b.query(
        "alert_coverage_windows",
        f"""SELECT postal_code, {bucket} AS bucket,
               CAST(SUM(event_count) AS BIGINT) AS events,
               CAST(SUM(out_of_service_count) AS BIGINT) AS out_of_service,
               CAST(SUM(signal_sum) AS BIGINT) AS signal_sum
            FROM {b.visible(COVERAGE_BY_POSTAL_CODE, where, scan)}
            GROUP BY 1, 2 ORDER BY 1, 2""",
    )


def _weak_condition(bands: Mapping[str, QualityBands]) -> str:
    """`signal_dbm` at or below its network type's hole threshold (constants from the bands)."""
    cases = " ".join(
        f"WHEN {_constant(network)} THEN signal_dbm <= {int(b.hole_max_dbm)}"
        for network, b in sorted(bands.items())
    )
    return f"CASE network_type {cases} ELSE false END"


def hole_windows(scan: TimeRange, bands: Mapping[str, QualityBands], *, window_s: int) -> Query:
    """Per postal code and window over the `events` of `scan` (only the hour partitions it
    covers): events, weak samples (at or below the RAT's hole_max_dbm) and distinct devices."""
    b = _Builder()

    def where() -> str:
        return b.in_range("event_time", scan) + " AND postal_code IS NOT NULL"

    return b.query(
        "alert_hole_windows",
        f"""SELECT postal_code, {_window_bucket("event_time", window_s)} AS bucket,
               COUNT(*) AS events,
               CAST(SUM(CASE WHEN {_weak_condition(bands)} THEN 1 ELSE 0 END) AS BIGINT) AS weak,
               COUNT(DISTINCT device_id) AS devices
            FROM {b.visible(EVENTS, where, scan)}
            GROUP BY 1, 2 ORDER BY 1, 2""",
    )


def scan_ranges(
    first_end: dt.datetime,
    last_end: dt.datetime,
    *,
    window: dt.timedelta,
    recent: dt.timedelta,
    baseline: dt.timedelta,
) -> tuple[TimeRange, TimeRange | None, TimeRange]:
    """(coverage scan, its middle, events scan) for the windows ending first_end..last_end."""
    coverage = TimeRange(first_end - recent - baseline, last_end)
    middle_start, middle_end = last_end - recent - baseline, first_end - recent
    middle = TimeRange(middle_start, middle_end) if middle_start < middle_end else None
    return coverage, middle, TimeRange(first_end - window, last_end)
