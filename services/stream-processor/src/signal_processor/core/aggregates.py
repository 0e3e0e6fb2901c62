"""Spark transforms (DataFrame -> DataFrame) from validated records to the lake tables.

KPI tables hold *mergeable partial aggregates* per 1-minute event-time window and key, written by
each micro-batch: count, sum, min, max and quality-band counts. Readers merge partials at any
granularity (avg = Σsum/Σcount), so a late event lands in its own window whenever it arrives and
every average stays exact. All times are UTC (the session time zone must be UTC).
"""

from __future__ import annotations

from collections.abc import Mapping

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from signal_common.lake import (
    COVERAGE_BY_POSTAL_CODE,
    EVENTS,
    GPS_PRECISION_BY_PROVIDER,
    QUARANTINE,
    SIGNAL_STRENGTH_BY_OPERATOR,
    STATUS_COUNT,
    LakeTable,
)
from signal_common.quality import BAND_NAMES, QualityBands
from signal_common.spark_schema import spark_type


def conform(df: DataFrame, table: LakeTable) -> DataFrame:
    """Select the table's columns and partition keys, in layout order, cast to layout types."""
    columns = table.columns + table.partition_keys
    return df.select(*(F.col(c.name).cast(spark_type(c.hive_type)).alias(c.name) for c in columns))


def with_partition(df: DataFrame, ts_column: str) -> DataFrame:
    """Add `dt` ('YYYY-MM-DD') and `hour` (0-23) partition columns from a UTC timestamp."""
    return df.withColumn("dt", F.date_format(ts_column, "yyyy-MM-dd")).withColumn(
        "hour", F.hour(ts_column)
    )


def with_window(events: DataFrame) -> DataFrame:
    """Add the 1-minute tumbling event-time window (`window_start`, `window_end`)."""
    start = F.date_trunc("minute", F.col("event_time"))
    return events.withColumn("window_start", start).withColumn(
        "window_end", start + F.expr("INTERVAL 1 MINUTE")
    )


def quality_band(bands: Mapping[str, QualityBands]) -> Column:
    """The quality band of each event's signal_dbm for its network type."""
    expr = None
    for network, b in bands.items():
        on = F.col("network_type") == network
        signal = F.col("signal_dbm")
        for name, bound in (
            ("excellent", b.excellent_min),
            ("good", b.good_min),
            ("fair", b.fair_min),
        ):
            condition = on & (signal >= bound)
            expr = F.when(condition, name) if expr is None else expr.when(condition, name)
        expr = expr.when(on, "poor")  # type: ignore[union-attr]
    assert expr is not None, "no quality bands configured"
    return expr


def valid_events(validated: DataFrame) -> DataFrame:
    """The valid records of a validated batch."""
    return validated.where(F.col("is_valid"))


def events_table(validated: DataFrame) -> DataFrame:
    """Rows of the `events` table: clean, deduplicated events, partitioned by event time."""
    return conform(with_partition(valid_events(validated), "event_time"), EVENTS)


def quarantine_table(validated: DataFrame, batch_id: int) -> DataFrame:
    """Rows of the `quarantine` table, partitioned by arrival time."""
    rows = validated.where(~F.col("is_valid")).withColumn("batch_id", F.lit(batch_id))
    return conform(with_partition(rows, "arrival_time"), QUARANTINE)


def _kpi_frame(events: DataFrame, batch_id: int) -> DataFrame:
    return with_partition(with_window(events), "window_start").withColumn(
        "batch_id", F.lit(batch_id)
    )


def signal_strength_partials(
    events: DataFrame, bands: Mapping[str, QualityBands], batch_id: int
) -> DataFrame:
    """Partials per window, operator and network type: count, sum/min/max signal, band counts."""
    banded = _kpi_frame(events, batch_id).withColumn("band", quality_band(bands))
    grouped = banded.groupBy(
        "window_start", "window_end", "dt", "hour", "operator", "network_type", "batch_id"
    ).agg(
        F.count(F.lit(1)).alias("event_count"),
        F.sum("signal_dbm").alias("signal_sum"),
        F.min("signal_dbm").alias("signal_min"),
        F.max("signal_dbm").alias("signal_max"),
        *(
            F.sum(F.when(F.col("band") == band, 1).otherwise(0)).alias(f"band_{band}_count")
            for band in BAND_NAMES
        ),
    )
    return conform(grouped, SIGNAL_STRENGTH_BY_OPERATOR)


def gps_precision_partials(events: DataFrame, batch_id: int) -> DataFrame:
    """Partials per window and provider: count, sum/min/max precision, satellites sum/count."""
    grouped = (
        _kpi_frame(events, batch_id)
        .groupBy("window_start", "window_end", "dt", "hour", "provider", "batch_id")
        .agg(
            F.count(F.lit(1)).alias("event_count"),
            F.sum("gps_precision_m").alias("precision_sum"),
            F.min("gps_precision_m").alias("precision_min"),
            F.max("gps_precision_m").alias("precision_max"),
            F.coalesce(F.sum("satellites"), F.lit(0)).alias("satellites_sum"),
            F.count("satellites").alias("satellites_count"),
        )
    )
    return conform(grouped, GPS_PRECISION_BY_PROVIDER)


def status_count_partials(events: DataFrame, batch_id: int) -> DataFrame:
    """Partial counts per window, postal code and status."""
    grouped = (
        _kpi_frame(events, batch_id)
        .groupBy("window_start", "window_end", "dt", "hour", "postal_code", "status", "batch_id")
        .agg(F.count(F.lit(1)).alias("event_count"))
    )
    return conform(grouped, STATUS_COUNT)


def coverage_partials(events: DataFrame, batch_id: int) -> DataFrame:
    """Partials per window and postal code: count, lat/lon sums, signal sum, out-of-service."""
    grouped = (
        _kpi_frame(events, batch_id)
        .groupBy("window_start", "window_end", "dt", "hour", "postal_code", "batch_id")
        .agg(
            F.count(F.lit(1)).alias("event_count"),
            F.sum("latitude").alias("latitude_sum"),
            F.sum("longitude").alias("longitude_sum"),
            F.sum("signal_dbm").alias("signal_sum"),
            F.sum(F.when(F.col("status") == "OUT_OF_SERVICE", 1).otherwise(0)).alias(
                "out_of_service_count"
            ),
        )
    )
    return conform(grouped, COVERAGE_BY_POSTAL_CODE)


def batch_quality(validated: DataFrame) -> DataFrame:
    """Per reason (null: valid rows): record count, max lateness (s) and newest event time."""
    lateness = F.col("arrival_time").cast("double") - F.col("event_time").cast("double")
    return validated.groupBy("reason").agg(
        F.count(F.lit(1)).alias("count"),
        F.max(lateness).alias("max_lateness_s"),
        F.max("event_time").alias("max_event_time"),
    )
