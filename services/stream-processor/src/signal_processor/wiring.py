"""The one place the job's collaborators are built from settings: the Spark session, the
Kinesis source, the lake and checkpoint storages, the run, the batch writer and the query.

Only this module (and the Glue entry point, through it) creates sessions, reads streams and
starts queries.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import sys
from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.streaming import StreamingQuery

from signal_common.aws import error_code
from signal_common.commits import committed_seq
from signal_processor.adapters.checkpoint import checkpoint_batch_context
from signal_processor.adapters.kinesis_source import KinesisDataSource
from signal_processor.adapters.lake_writer import (
    LakeWriter,
    Storage,
    discard_uncommitted,
    new_run_id,
    run_heads,
    storage_for,
)
from signal_processor.adapters.metrics import CloudWatchMetrics
from signal_processor.adapters.progress import ProgressStore, progress_store
from signal_processor.adapters.validating_source import (
    VALIDATED_SOURCE_NAME,
    ValidatedKinesisDataSource,
)
from signal_processor.batch_writer import BatchWriter
from signal_processor.core.validate import DEDUP_COLUMNS
from signal_processor.settings import ProcessorSettings

log = logging.getLogger(__name__)

_STATE = "org.apache.spark.sql.execution.streaming.state"
_ROCKSDB = "spark.sql.streaming.stateStore.rocksdb"
STATE_STORES = {
    "rocksdb": f"{_STATE}.RocksDBStateStoreProvider",
    "hdfs": f"{_STATE}.HDFSBackedStateStoreProvider",
}
# whether RocksDB counts the state's rows (configure_session turns it off)
ROCKSDB_ROW_COUNT = f"{_ROCKSDB}.trackTotalNumberOfRows"


def build_session(
    settings: ProcessorSettings, *, app_name: str = "signal-stream-processor"
) -> SparkSession:
    """A Spark session configured for the job (UTC, micro-second Parquet timestamps)."""
    # Local-mode Python workers inherit this process's environment: give them our import path
    # (under pex or Pants the sources are not on the interpreter's default path).
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    # ... and our interpreter (unless PYSPARK_PYTHON says otherwise): Spark's default is
    # `python3` from PATH, which may be another Python than the one that has our dependencies
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
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
    if settings.state_store == "rocksdb":
        # Each batch's dedup commit writes the changes of the batch (a changelog) instead of
        # uploading a RocksDB snapshot; snapshots are taken by the executors' maintenance in
        # the background. Spark 3.5+ (Glue 6.0 runs 4.1.1), safe to turn on for an existing
        # checkpoint: Spark's Structured Streaming Programming Guide, "RocksDB State Store
        # Changelog Checkpointing" (SPARK-43421). On S3 a snapshot a batch is most of a commit.
        spark.conf.set(f"{_ROCKSDB}.changelogCheckpointing.enabled", "true")
        # Counting the state's rows costs a RocksDB lookup before every write (a dedup already
        # makes one of its own): off, a batch's state update is ~a third faster (the benchmark's
        # state phase measures both) and the progress reports numRowsTotal as 0, which nothing
        # here reads. Spark's Structured Streaming Programming Guide, RocksDB state store,
        # "Performance-aspect considerations" (SPARK-37224, Spark 3.3+); settable on restart.
        spark.conf.set(ROCKSDB_ROW_COUNT, "false")
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
            "seq_base": committed_seq(heads),
        },
    )
    run_id = str(run["run_id"])
    earlier = [h for h in heads if h.run_id != run_id]
    seq_base = int(run.get("seq_base", committed_seq(earlier)))
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


def preflight(settings: ProcessorSettings) -> str | None:
    """One sentence saying why the job cannot run (endpoint, stream, credentials), or None."""
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    where = settings.kinesis_endpoint_url or f"AWS ({settings.aws_region})"
    client = boto3.session.Session().client(  # a new session: credentials resolved now
        "kinesis",
        region_name=settings.aws_region,
        endpoint_url=settings.kinesis_endpoint_url,
        config=Config(retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=5),
    )
    try:
        client.describe_stream_summary(StreamName=settings.stream_name)
    except NoCredentialsError:
        return (
            "no AWS credentials found (set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or a profile)."
        )
    except ClientError as exc:
        code = error_code(exc)
        if code == "ResourceNotFoundException":
            return f"stream {settings.stream_name!r} does not exist at {where}."
        if code in (
            "UnrecognizedClientException",
            "AccessDeniedException",
            "InvalidSignatureException",
        ):
            return f"the credentials were rejected by {where} ({code})."
        return f"Kinesis at {where} answered {code}: {exc.response['Error'].get('Message', '')}"
    except BotoCoreError as exc:  # connection refused, DNS, timeout
        return f"cannot reach Kinesis at {where}: {exc}."
    return None
