"""The streaming job: wiring of the Kinesis source, the core transforms and the lake writer.

Only this module (and the Glue entry point) creates sessions, reads streams and starts queries.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlparse

import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.streaming import StreamingQuery

from signal_common.lake import PIPELINE_BATCHES, partition_values, table_arrow_schema
from signal_common.quality import bands_with_overrides
from signal_processor.adapters.kinesis_source import KinesisDataSource, records_read
from signal_processor.adapters.lake_writer import LakeWriter, storage_for
from signal_processor.adapters.progress import progress_store
from signal_processor.adapters.validating_source import (
    VALIDATED_SOURCE_NAME,
    ValidatedKinesisDataSource,
)
from signal_processor.core import aggregates as agg
from signal_processor.core.validate import DEDUP_COLUMNS, VALIDATED_DDL, validate_batches
from signal_processor.settings import ProcessorSettings

log = logging.getLogger(__name__)


def build_session(
    settings: ProcessorSettings, *, app_name: str = "signal-stream-processor"
) -> SparkSession:
    """A Spark session configured for the job (UTC, micro-second Parquet timestamps)."""
    # Local-mode Python workers inherit this process's environment: give them our import path
    # (under pex or Pants the sources are not on the interpreter's default path).
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    spark = (
        SparkSession.builder.appName(app_name)
        .master(settings.spark_master)
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", str(settings.shuffle_partitions))
        .config("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.ui.enabled", "false")
        # Spark tells a stop that interrupts foreachBatch from a failure by running a regex over
        # the Python error's text; on the JVM's default 1 MB thread stack that regex overflows on
        # a long traceback, and every mid-batch stop logged a StackOverflowError. (Takes effect
        # when this call starts the JVM: local runs and tests.)
        .config("spark.driver.extraJavaOptions", "-Xss16m")
        .getOrCreate()
    )
    configure_session(spark, settings)
    return spark


def configure_session(spark: SparkSession, settings: ProcessorSettings) -> None:
    """Session settings the transforms rely on, and the Kinesis source registration."""
    spark.conf.set("spark.sql.session.timeZone", "UTC")
    spark.conf.set("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
    spark.conf.set("spark.sql.shuffle.partitions", str(settings.shuffle_partitions))
    spark.dataSource.register(KinesisDataSource)
    spark.dataSource.register(ValidatedKinesisDataSource)


def progress_location(settings: ProcessorSettings) -> str:
    return settings.checkpoint_location.rstrip("/") + "/kinesis-source"


def read_kinesis(
    spark: SparkSession, settings: ProcessorSettings, *, validated: bool = True
) -> DataFrame:
    """The record stream from Kinesis (our Python Data Source).

    validated=True: records validated on the executors as they are read (VALIDATED_DDL);
    validated=False: raw records (SOURCE_SCHEMA), for `validate`.
    """
    reader = (
        spark.readStream.format(VALIDATED_SOURCE_NAME if validated else "signal_kinesis")
        .option("streamName", settings.stream_name)
        .option("region", settings.aws_region)
        .option("startingPosition", settings.starting_position)
        .option("maxRecordsPerBatch", str(settings.max_records_per_batch))
        .option("progressLocation", progress_location(settings))
    )
    if settings.kinesis_endpoint_url:
        reader = reader.option("endpointUrl", settings.kinesis_endpoint_url)
    if settings.starting_timestamp:
        reader = reader.option("startingTimestamp", settings.starting_timestamp)
    return reader.load()


def validate(raw: DataFrame) -> DataFrame:
    """Validate raw records (data, shard_id, sequence_number, …) into VALIDATED_DDL rows."""
    return raw.select(
        "data", "shard_id", "sequence_number", "sub_sequence_number", "arrival_time"
    ).mapInArrow(validate_batches, VALIDATED_DDL)


def deduplicate(validated: DataFrame, dedup_watermark: str) -> DataFrame:
    """Drop re-sent events within the arrival-time watermark.

    The watermark is on the Kinesis arrival time, not event time, so dedup state stays bounded
    while no event is ever discarded for being late; invalid records carry a position key and
    pass dedup unchanged (only a replayed record position would be dropped).
    """
    return validated.withWatermark("arrival_time", dedup_watermark).dropDuplicatesWithinWatermark(
        list(DEDUP_COLUMNS)
    )


@dataclass
class BatchContext:
    """What foreachBatch needs beyond the DataFrame: batch input counts and the watermark."""

    rows_in: int | None
    watermark: dt.datetime | None


def checkpoint_batch_context(settings: ProcessorSettings, batch_id: int) -> BatchContext:
    """Read Spark's offset log for the batch: our source's end offset and the watermark."""
    parsed = urlparse(settings.checkpoint_location)
    if parsed.scheme not in ("", "file"):
        return BatchContext(None, None)
    path = os.path.join(parsed.path, "offsets", str(batch_id))
    try:
        with open(path) as handle:
            lines = handle.read().splitlines()
    except FileNotFoundError:
        return BatchContext(None, None)
    metadata = json.loads(lines[1])
    offset = json.loads(lines[2])
    store = progress_store(
        progress_location(settings),
        region=settings.aws_region,
        endpoint_url=settings.kinesis_endpoint_url,
    )
    watermark_ms = metadata.get("batchWatermarkMs", 0)
    watermark = dt.datetime.fromtimestamp(watermark_ms / 1000, dt.UTC) if watermark_ms else None
    return BatchContext(records_read(store, offset), watermark)


class BatchWriter:
    """foreachBatch sink: writes every lake table for one micro-batch, exactly once.

    The batch is collected once as Arrow (one Spark job runs the source read, validation and
    dedup); every table is then derived from it by the Arrow transforms in `core.aggregates`.
    """

    def __init__(
        self,
        settings: ProcessorSettings,
        writer: LakeWriter,
        *,
        context: Callable[[int], BatchContext] | None = None,
    ) -> None:
        self.settings = settings
        self.writer = writer
        self.bands = bands_with_overrides(settings.quality_band_overrides)
        self.context = context or (lambda batch_id: checkpoint_batch_context(settings, batch_id))

    def __call__(self, validated: DataFrame, batch_id: int) -> None:
        started = time.monotonic()
        batch = validated.toArrow()
        read_ms = int((time.monotonic() - started) * 1000)  # source + validation + dedup
        self.write_batch(batch, batch_id, started=started, read_ms=read_ms)

    def write_batch(
        self, batch: pa.Table, batch_id: int, *, started: float, read_ms: int = 0
    ) -> None:
        """Write every table of one validated batch (Arrow, in the validated schema)."""
        quality = agg.batch_quality(batch)
        events = agg.with_window(agg.valid_events(batch))  # shared by the four KPI tables
        tables: dict[str, Callable[[], pa.Table]] = {
            "events": lambda: agg.events_table(batch),
            "signal_strength_by_operator": lambda: agg.signal_strength_partials(
                events, self.bands, batch_id
            ),
            "gps_precision_by_provider": lambda: agg.gps_precision_partials(events, batch_id),
            "status_count": lambda: agg.status_count_partials(events, batch_id),
            "coverage_by_postal_code": lambda: agg.coverage_partials(events, batch_id),
        }
        w = self.writer
        for table, rows in tables.items():
            # an idle batch still clears any earlier attempt's files
            w.write_arrow(rows() if quality.valid_rows else None, table, batch_id)
        quarantine = agg.quarantine_table(batch, batch_id) if quality.quarantined_rows else None
        w.write_arrow(quarantine, "quarantine", batch_id)
        if self.settings.fault_after_write_batch == batch_id:
            log.error("fault injection: crashing after writing batch", extra={"batch_id": batch_id})
            os._exit(137)
        ctx = self.context(batch_id)
        now = dt.datetime.now(dt.UTC)
        day, hour = partition_values(now)
        accounted = quality.valid_rows + quality.quarantined_rows
        row = {
            "batch_id": batch_id,
            "batch_time": now,
            "rows_in": ctx.rows_in,
            "valid_rows": quality.valid_rows,
            "quarantined_rows": quality.quarantined_rows,
            "quarantined_by_reason": list(quality.quarantined_by_reason.items()),
            "duplicates_removed": (
                max(0, ctx.rows_in - accounted) if ctx.rows_in is not None else None
            ),
            "max_lateness_s": quality.max_lateness_s,
            "max_event_time": quality.max_event_time,
            "arrival_watermark": ctx.watermark,
            "processing_ms": int((time.monotonic() - started) * 1000),
            "dt": day,
            "hour": hour,
        }
        schema = table_arrow_schema(PIPELINE_BATCHES, with_partitions=True)
        w.write_arrow(pa.Table.from_pylist([row], schema=schema), "pipeline_batches", batch_id)
        log.info(
            "batch written",
            extra={
                "batch_id": batch_id,
                "rows_in": ctx.rows_in,
                "valid": quality.valid_rows,
                "quarantined": quality.quarantined_rows,
                "read_validate_dedup_ms": read_ms,
                "ms": row["processing_ms"],
            },
        )


def start_query(spark: SparkSession, settings: ProcessorSettings) -> StreamingQuery:
    """Start the streaming query: Kinesis (validated as read) → dedup → foreachBatch(lake)."""
    stream = deduplicate(read_kinesis(spark, settings), settings.dedup_watermark)
    writer = LakeWriter(
        settings.lake_root,
        storage_for(
            settings.lake_root, region=settings.aws_region, endpoint_url=settings.s3_endpoint_url
        ),
    )
    return (
        stream.writeStream.foreachBatch(BatchWriter(settings, writer))
        .option("checkpointLocation", settings.checkpoint_location)
        .trigger(processingTime=f"{settings.trigger_seconds} seconds")
        .queryName("signal-stream-processor")
        .start()
    )
