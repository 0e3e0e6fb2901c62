"""AWS Glue 6.0 streaming entry point: Glue's Kinesis connector + the same transforms and sink.

Job parameters (--NAME value): JOB_NAME, stream_arn, lake_root (s3://…), checkpoint_location
(s3://…), starting_position (TRIM_HORIZON | LATEST), trigger_seconds. Ship the project wheel
(`./pants package services/stream-processor:glue-wheel`) with --additional-python-modules.

Glue's connector exposes the raw record text (`$json$data_infer_schema$_temporary$`) and, with
addRecordTimestamp, the arrival time (`__src_timestamp`), but not shard ids or sequence numbers:
quarantined rows carry shard_id "glue" and a SHA-1 of (arrival time, payload) as their position.
"""

from __future__ import annotations

import sys

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from signal_processor.adapters.lake_writer import LakeWriter, storage_for
from signal_processor.job import (
    BatchContext,
    BatchWriter,
    configure_session,
    deduplicate,
    validate,
)
from signal_processor.settings import ProcessorSettings

RAW_TEXT = "$json$data_infer_schema$_temporary$"


def glue_raw_records(frame: DataFrame) -> DataFrame:
    """Glue's Kinesis frame in the shape our Python source produces."""
    text = F.col(f"`{RAW_TEXT}`")
    arrival = F.col("__src_timestamp").cast("timestamp")
    return frame.select(
        F.encode(text, "UTF-8").alias("data"),
        F.lit("glue").alias("shard_id"),
        F.sha1(F.concat_ws("|", arrival.cast("string"), text)).alias("sequence_number"),
        F.lit(0).cast("bigint").alias("sub_sequence_number"),
        arrival.alias("arrival_time"),
    )


def main(argv: list[str]) -> None:
    """Run the streaming job inside AWS Glue."""
    from awsglue.context import GlueContext  # type: ignore[import-not-found]
    from awsglue.job import Job  # type: ignore[import-not-found]
    from awsglue.utils import getResolvedOptions  # type: ignore[import-not-found]
    from pyspark.context import SparkContext

    args = getResolvedOptions(
        argv,
        ["JOB_NAME", "stream_arn", "lake_root", "checkpoint_location", "starting_position"],
    )
    settings = ProcessorSettings(
        lake_root=args["lake_root"], checkpoint_location=args["checkpoint_location"]
    )
    glue_context = GlueContext(SparkContext.getOrCreate())
    spark = glue_context.spark_session
    configure_session(spark, settings)
    job = Job(glue_context)
    job.init(args["JOB_NAME"], args)
    frame = glue_context.create_data_frame.from_options(
        connection_type="kinesis",
        connection_options={
            "streamARN": args["stream_arn"],
            "startingPosition": args["starting_position"],
            "classification": "json",
            "inferSchema": "true",
            "addRecordTimestamp": "true",
        },
    )
    stream = deduplicate(validate(glue_raw_records(frame)), settings.dedup_watermark)
    writer = LakeWriter(
        settings.lake_root, storage_for(settings.lake_root, region=settings.aws_region)
    )
    sink = BatchWriter(settings, writer, context=lambda _batch_id: BatchContext(None, None))
    glue_context.forEachBatch(
        frame=stream,
        batch_function=sink,
        options={
            "windowSize": f"{int(settings.trigger_seconds)} seconds",
            "checkpointLocation": settings.checkpoint_location,
        },
    )
    job.commit()


if __name__ == "__main__":
    main(sys.argv)
