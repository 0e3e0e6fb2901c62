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
from typing import Any, Protocol

import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.streaming import StreamingQuery

from signal_common.lake import (
    EVENTS,
    PIPELINE_BATCHES,
    QUARANTINE,
    partition_values,
    table_arrow_schema,
)
from signal_common.quality import bands_with_overrides
from signal_processor.adapters.aws_clients import aws_client
from signal_processor.adapters.kinesis_source import KinesisDataSource, batch_boundaries
from signal_processor.adapters.lake_writer import (
    LakeWriter,
    Storage,
    discard_uncommitted,
    new_run_id,
    run_heads,
    storage_for,
)
from signal_processor.adapters.partition_writer import BatchResult, PartitionTask, run_partitions
from signal_processor.adapters.progress import ProgressStore, progress_store
from signal_processor.adapters.validating_source import (
    VALIDATED_SOURCE_NAME,
    ValidatedKinesisDataSource,
)
from signal_processor.core.positions import resume_state
from signal_processor.core.validate import DEDUP_COLUMNS
from signal_processor.settings import ProcessorSettings

log = logging.getLogger(__name__)

_STATE = "org.apache.spark.sql.execution.streaming.state"
STATE_STORES = {
    "rocksdb": f"{_STATE}.RocksDBStateStoreProvider",
    "hdfs": f"{_STATE}.HDFSBackedStateStoreProvider",
}


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
    spark.conf.set(
        "spark.sql.streaming.stateStore.providerClass", STATE_STORES[settings.state_store]
    )
    spark.dataSource.register(KinesisDataSource)
    spark.dataSource.register(ValidatedKinesisDataSource)


def progress_location(settings: ProcessorSettings) -> str:
    return settings.checkpoint_location.rstrip("/") + "/kinesis-source"


def source_progress(settings: ProcessorSettings) -> ProgressStore:
    """The Kinesis source's progress log (beside the checkpoint: local or S3)."""
    return progress_store(
        progress_location(settings),
        region=settings.aws_region,
        endpoint_url=settings.s3_endpoint_url,
    )


def read_kinesis(
    spark: SparkSession, settings: ProcessorSettings, *, initial_positions: str | None = None
) -> DataFrame:
    """The record stream from Kinesis, validated on the executors as it is read (VALIDATED_DDL).

    `initial_positions`: where a new checkpoint starts instead of the starting position (JSON,
    the lake's last commit)."""
    options = {
        "streamName": settings.stream_name,
        "region": settings.aws_region,
        "startingPosition": settings.starting_position,
        "startingTimestamp": settings.starting_timestamp,
        "maxRecordsPerBatch": str(settings.max_records_per_batch),
        "progressLocation": progress_location(settings),
        "endpointUrl": settings.kinesis_endpoint_url,
        "s3EndpointUrl": settings.s3_endpoint_url,
        "initialPositions": initial_positions,
        "maxEventAheadSeconds": str(settings.max_event_ahead_seconds),
        "maxEventBehindSeconds": str(settings.max_event_behind_seconds),
    }
    reader = spark.readStream.format(VALIDATED_SOURCE_NAME)
    for key, value in options.items():
        if value is not None:
            reader = reader.option(key, value)
    return reader.load()


def deduplicate(validated: DataFrame, dedup_watermark: str) -> DataFrame:
    """Drop re-sent events: a copy read within `dedup_watermark` of the first is removed.

    The watermark runs on `read_time`, the time the source planned the batch (one value per
    batch, increasing from batch to batch, replayed identically): no row can ever fall behind
    it, whatever the backlog or shard skew, so dedup removes duplicates and nothing else, and
    its state stays bounded. Event time plays no part: lateness never discards an event.
    Invalid records carry a position key and pass unchanged (only a replayed position would be
    dropped).
    """
    return validated.withWatermark("read_time", dedup_watermark).dropDuplicatesWithinWatermark(
        list(DEDUP_COLUMNS)
    )


@dataclass
class BatchContext:
    """What foreachBatch needs beyond the DataFrame: the batch's source offset (where each shard
    was read from), what it read (per-shard boundaries) and the dedup watermark."""

    offset: dict[str, Any] | None
    boundaries: dict[str, dict[str, Any]] | None
    watermark_ms: int | None = None

    @property
    def rows_in(self) -> int | None:
        """User records the batch read from the stream."""
        if self.boundaries is None:
            return None
        return sum(int(b.get("user_records", 0)) for b in self.boundaries.values())

    @property
    def read_time_ms(self) -> int | None:
        return None if self.offset is None else self.offset.get("t")

    @property
    def watermark(self) -> dt.datetime | None:
        if not self.watermark_ms:
            return None
        return dt.datetime.fromtimestamp(self.watermark_ms / 1000, dt.UTC)

    def late_dropped(self) -> int | None:
        """Rows dedup discarded as older than its watermark (`read_time <= watermark`, Spark's
        rule). Every row of a batch carries the batch's read time, so it is all or none."""
        rows_in, read_ms = self.rows_in, self.read_time_ms
        if rows_in is None or read_ms is None:
            return None
        return rows_in if self.watermark_ms and read_ms <= self.watermark_ms else 0

    def millis_behind_latest(self) -> int | None:
        """The consumer lag: max MillisBehindLatest over the shards the batch read."""
        lags = [b["millis_behind"] for b in (self.boundaries or {}).values()
                if b.get("millis_behind") is not None]  # fmt: skip
        return max(lags) if lags else None

    def resume(self) -> dict[str, Any] | None:
        """Where reading continues after this batch (recorded as the lake's commit)."""
        if self.offset is None or self.boundaries is None:
            return None
        return resume_state(self.offset, self.boundaries)

    def source_positions(self) -> str | None:
        """JSON: per shard, where the batch started and what it read."""
        if self.offset is None or self.boundaries is None:
            return None
        covered = {
            shard_id: {
                "from": position,
                "to": self.boundaries[shard_id].get("last_seq"),
                "records": self.boundaries[shard_id].get("kinesis_records", 0),
                "closed": bool(self.boundaries[shard_id].get("closed")),
            }
            for shard_id, position in self.offset["shards"].items()
        }
        return json.dumps(covered, sort_keys=True)


def checkpoint_batch_context(
    checkpoint: Storage, checkpoint_location: str, store: ProgressStore, batch_id: int
) -> BatchContext:
    """Read Spark's offset log entry of the batch (our source's end offset and the watermark)
    and the source's boundaries for it, wherever the checkpoint lives (local or S3)."""
    data = checkpoint.read_bytes(f"{checkpoint_location.rstrip('/')}/offsets/{batch_id}")
    if data is None:
        return BatchContext(None, None)
    lines = data.decode().splitlines()  # v1, the batch metadata, one line per source
    metadata, offset = json.loads(lines[1]), json.loads(lines[2])
    return BatchContext(offset, batch_boundaries(store, offset), metadata.get("batchWatermarkMs"))


class MetricsPublisher(Protocol):
    def consumer_lag(self, stream: str, millis_behind: int) -> None: ...


class CloudWatchMetrics:
    """Publishes the consumer lag (MillisBehindLatest, max over shards) to CloudWatch."""

    NAMESPACE = "SignalStream/StreamProcessor"

    def __init__(self, *, region: str, endpoint_url: str | None) -> None:
        self.region, self.endpoint_url = region, endpoint_url

    def consumer_lag(self, stream: str, millis_behind: int) -> None:
        aws_client("cloudwatch", self.region, self.endpoint_url).put_metric_data(
            Namespace=self.NAMESPACE,
            MetricData=[
                {
                    "MetricName": "MillisBehindLatest",
                    "Dimensions": [{"Name": "Stream", "Value": stream}],
                    "Value": float(millis_behind),
                    "Unit": "Milliseconds",
                }
            ],
        )


class BatchWriter:
    """foreachBatch sink: writes every lake table for one micro-batch, exactly once.

    The executors carry the records: one Spark job (`partition_writer.run_partitions`) runs the
    source read, validation and dedup and, in each task, writes the partition's `events` and
    `quarantine` files and derives its KPI partials and quality figures. The driver receives
    one small row per partition (files written, figures, partials), merges them, writes the
    KPI tables and `pipeline_batches` and commits: its work and memory follow the number of
    windows and keys, not the number of records.
    """

    def __init__(
        self,
        settings: ProcessorSettings,
        writer: LakeWriter,
        *,
        context: Callable[[int], BatchContext],
        metrics: MetricsPublisher | None = None,
    ) -> None:
        self.settings = settings
        self.writer = writer
        self.bands = bands_with_overrides(settings.quality_band_overrides)
        self.context = context
        self.metrics = metrics

    def __call__(self, validated: DataFrame, batch_id: int) -> None:
        started = time.monotonic()
        task = PartitionTask(self.writer, batch_id, self.bands)
        self.write_batch(run_partitions(validated, task), batch_id, started=started)

    def write_batch(self, result: BatchResult, batch_id: int, *, started: float) -> None:
        """Record what the tasks wrote, write the merged tables and commit the batch."""
        quality = result.quality
        w = self.writer
        for table in (EVENTS, QUARANTINE):
            w.record_files(table.name, batch_id, result.files[table.name])
        keep = [uri for uris in result.files.values() for uri in uris]
        w.delete_strays(batch_id, keep, known=result.intents)
        for name, rows in result.partials.items():
            # an idle batch still clears any earlier attempt's files
            w.write_arrow(rows if rows.num_rows else None, name, batch_id)
        if self.settings.fault_after_write_batch == batch_id:
            log.error("fault injection: crashing after writing batch", extra={"batch_id": batch_id})
            os._exit(137)
        ctx = self.context(batch_id)
        now = dt.datetime.now(dt.UTC)
        day, hour = partition_values(now)
        accounted = quality.valid_rows + quality.quarantined_rows
        rows_in, late = ctx.rows_in, ctx.late_dropped()
        lag = ctx.millis_behind_latest()
        row = {
            "batch_id": batch_id,
            "batch_time": now,
            "rows_in": rows_in,
            "valid_rows": quality.valid_rows,
            "quarantined_rows": quality.quarantined_rows,
            "quarantined_by_reason": list(quality.quarantined_by_reason.items()),
            # what dedup removed: rows in, less rows out, less the rows it dropped as late
            "duplicates_removed": (
                rows_in - accounted - (late or 0) if rows_in is not None else None
            ),
            "max_lateness_s": quality.max_lateness_s,
            "max_event_time": quality.max_event_time,
            "arrival_watermark": ctx.watermark,
            "processing_ms": int((time.monotonic() - started) * 1000),
            "run_id": w.run_id,
            "late_dropped": late,
            "millis_behind_latest": lag,
            "source_positions": ctx.source_positions(),
            "dt": day,
            "hour": hour,
        }
        schema = table_arrow_schema(PIPELINE_BATCHES, with_partitions=True, with_lineage=False)
        w.write_arrow(pa.Table.from_pylist([row], schema=schema), "pipeline_batches", batch_id)
        resume = ctx.resume()
        if resume is None:
            raise ProcessorError(
                f"batch {batch_id}: the checkpoint has no offset for it; cannot commit it"
            )
        w.commit(batch_id, resume)
        w.clear_intents(result.intents)
        if late:
            log.error(
                "rows dropped as late by the dedup watermark",
                extra={"batch_id": batch_id, "rows": late},
            )
        if self.metrics is not None and lag is not None:
            try:
                self.metrics.consumer_lag(self.settings.stream_name, lag)
            except Exception:  # the batch is committed: a metric outage must not stop the stream
                log.exception(
                    "could not publish the consumer-lag metric", extra={"batch_id": batch_id}
                )
        log.info(
            "batch written",
            extra={
                "batch_id": batch_id,
                "run_id": w.run_id,
                "rows_in": rows_in,
                "valid": quality.valid_rows,
                "quarantined": quality.quarantined_rows,
                "duplicates_removed": row["duplicates_removed"],
                "millis_behind_latest": lag,
                "tasks": result.tasks,
                "driver_bytes": result.received_bytes,
                # per task, the longest: waiting for the upstream (pipelined in the same job),
                # and its own kernels and writes
                "read_validate_dedup_ms": result.input_ms,
                "executor_write_ms": result.work_ms,
                "ms": row["processing_ms"],
            },
        )


class ProcessorError(RuntimeError):
    """The job cannot go on (a missing offset, an unusable checkpoint or lake)."""


@dataclass(frozen=True)
class RunStart:
    """A run (checkpoint) as the job starts: its id and where a new one begins reading."""

    run_id: str
    initial_positions: str | None
    discarded_files: int
    seq_base: int = 0


def start_run(settings: ProcessorSettings, store: ProgressStore, lake: Storage) -> RunStart:
    """This checkpoint's run id; for a run that has not committed yet, the lake's end.

    A new checkpoint never touches what earlier runs committed: its files carry its own run id.
    Before its first batch it deletes what earlier runs wrote for batches they never committed
    and, unless `resume_from_lake` is off, continues where the lake's last commit ended.
    """
    heads = run_heads(lake, settings.lake_root)
    run = store.get("run") or store.put_if_absent(
        "run",
        {
            "run_id": new_run_id(),
            "created": dt.datetime.now(dt.UTC).isoformat(),
            # this run's batches follow every sequence committed so far (one processor per lake)
            "seq_base": max((h.seq for h in heads), default=0),
        },
    )
    run_id = str(run["run_id"])
    earlier = [h for h in heads if h.run_id != run_id]
    seq_base = int(run.get("seq_base", max((h.seq for h in earlier), default=0)))
    if len(earlier) < len(heads):
        return RunStart(run_id, None, 0, seq_base)  # a run in progress: Spark's checkpoint drives
    discarded = discard_uncommitted(lake, settings.lake_root, current_run=run_id)
    if not settings.resume_from_lake or not earlier:
        return RunStart(run_id, None, discarded, seq_base)
    last = earlier[-1]
    log.warning(
        "new checkpoint: continuing where the lake's last commit ended",
        extra={"run_id": run_id, "after_run": last.run_id, "after_batch": last.batch_id},
    )
    return RunStart(run_id, json.dumps(last.resume), discarded, seq_base)


def start_query(spark: SparkSession, settings: ProcessorSettings) -> StreamingQuery:
    """Start the streaming query: Kinesis (validated as read) → dedup → foreachBatch(lake)."""
    lake = storage_for(
        settings.lake_root, region=settings.aws_region, endpoint_url=settings.s3_endpoint_url
    )
    store = source_progress(settings)
    run = start_run(settings, store, lake)
    stream = deduplicate(
        read_kinesis(spark, settings, initial_positions=run.initial_positions),
        settings.dedup_watermark,
    )
    checkpoint = storage_for(
        settings.checkpoint_location,
        region=settings.aws_region,
        endpoint_url=settings.s3_endpoint_url,
    )
    metrics = (
        CloudWatchMetrics(region=settings.aws_region, endpoint_url=settings.cloudwatch_endpoint_url)
        if settings.publish_metrics
        else None
    )
    sink = BatchWriter(
        settings,
        LakeWriter(settings.lake_root, lake, run_id=run.run_id, seq_base=run.seq_base),
        context=lambda batch_id: checkpoint_batch_context(
            checkpoint, settings.checkpoint_location, store, batch_id
        ),
        metrics=metrics,
    )
    return (
        stream.writeStream.foreachBatch(sink)
        .option("checkpointLocation", settings.checkpoint_location)
        .trigger(processingTime=f"{settings.trigger_seconds} seconds")
        .queryName("signal-stream-processor")
        .start()
    )
