"""AWS Glue 6.0 streaming entry point: the local job, unchanged, on Glue's Spark.

Glue 6.0 runs Spark 4.1 with the Python Data Source API, so the job reads Kinesis with the same
source (`signal_kinesis_validated`), validates, deduplicates and writes the lake exactly as a
local run does; this module only builds the session from GlueContext and maps the job's
arguments onto `ProcessorSettings`. Glue's own Kinesis connector is not used: it exposes neither
shard ids nor sequence numbers, so replays, per-shard positions, quarantine positions and the
batch figures (rows in, duplicates, lag) would be lost.

Job arguments (Glue passes `--name value`; names use underscores, as Glue's job parameters do):
required `--JOB_NAME --stream --lake_root --checkpoint`; optional `--region
--trigger_seconds --starting_position --starting_timestamp --max_records_per_batch
--dedup_watermark --state_store --resume_from_lake --quality_band_overrides (JSON)
--max_event_ahead_seconds --max_event_behind_seconds --publish_metrics (default true on Glue)
--kinesis_endpoint_url --s3_endpoint_url --cloudwatch_endpoint_url --log_level`.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from pydantic import ValidationError

from signal_processor.settings import ProcessorSettings

REQUIRED = ("JOB_NAME", "stream", "lake_root", "checkpoint")
# job argument -> ProcessorSettings field
OPTIONAL = {
    "region": "aws_region",
    "trigger_seconds": "trigger_seconds",
    "starting_position": "starting_position",
    "starting_timestamp": "starting_timestamp",
    "max_records_per_batch": "max_records_per_batch",
    "dedup_watermark": "dedup_watermark",
    "state_store": "state_store",
    "resume_from_lake": "resume_from_lake",
    "quality_band_overrides": "quality_band_overrides",
    "max_event_ahead_seconds": "max_event_ahead_seconds",
    "max_event_behind_seconds": "max_event_behind_seconds",
    "publish_metrics": "publish_metrics",
    "kinesis_endpoint_url": "kinesis_endpoint_url",
    "s3_endpoint_url": "s3_endpoint_url",
    "cloudwatch_endpoint_url": "cloudwatch_endpoint_url",
    "log_level": "log_level",
}


class GlueArgumentError(ValueError):
    """A job argument is missing or has a value the settings reject."""


def present_optional(argv: list[str]) -> list[str]:
    """The optional argument names given in argv (getResolvedOptions fails on absent ones)."""
    return [name for name in OPTIONAL if f"--{name}" in argv]


def settings_from_args(args: dict[str, str]) -> ProcessorSettings:
    """ProcessorSettings from resolved job arguments; publishing metrics is on by default."""
    values: dict[str, Any] = {
        "stream_name": args["stream"],
        "lake_root": args["lake_root"],
        "checkpoint_location": args["checkpoint"],
        "publish_metrics": True,
    }
    try:
        for name, field in OPTIONAL.items():
            if name in args:
                raw = args[name]
                values[field] = json.loads(raw) if name == "quality_band_overrides" else raw
        return ProcessorSettings(**values)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        raise GlueArgumentError(f"job argument {where}: {first.get('msg')}") from None
    except json.JSONDecodeError as exc:
        raise GlueArgumentError(f"job argument quality_band_overrides is not JSON: {exc}") from None


def main(argv: list[str]) -> None:
    """Run the streaming job inside AWS Glue until it is stopped."""
    from awsglue.context import GlueContext  # pants: no-infer-dep
    from awsglue.job import Job  # pants: no-infer-dep
    from awsglue.utils import getResolvedOptions  # pants: no-infer-dep
    from pyspark.context import SparkContext

    from signal_common.logs import configure_logging
    from signal_processor.wiring import configure_session, start_query

    args = getResolvedOptions(argv, [*REQUIRED, *present_optional(argv)])
    settings = settings_from_args(args)
    configure_logging(settings.log_level, json_lines=settings.log_json)
    glue_context = GlueContext(SparkContext.getOrCreate())
    spark = glue_context.spark_session
    configure_session(spark, settings)
    job = Job(glue_context)
    job.init(args["JOB_NAME"], args)
    query = start_query(spark, settings)
    query.awaitTermination()
    job.commit()


if __name__ == "__main__":
    main(sys.argv)
