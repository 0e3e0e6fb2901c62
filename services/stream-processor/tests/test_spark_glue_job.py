"""The Glue entry point end to end on local Spark against kinesalite.

`awsglue` here is the local stand-in in tests/awsglue (GlueContext, Job, getResolvedOptions),
not AWS Glue: it gives the entry point a session from the SparkContext and parses the job's
arguments the way Glue does. Everything after that is the processor's own code path, which is
exactly what runs on Glue 6.0.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from awsglue import job as glue_job_standin
from processor_testdata import (
    MAX_BEHIND_FOR_DATED_DATA_S,
    assert_lake_matches_oracle,
    lake_frames,
    put_all,
    workload,
)

from signal_processor import glue_job


def test_the_glue_entry_point_runs_the_local_job_and_matches_the_oracle(
    spark: Any,
    kinesis_client: Any,
    kinesis_endpoint_url: str,
    make_stream: Callable[..., str],
    tmp_path: Path,
) -> None:
    stream = make_stream(shards=2)
    payloads, events, duplicates = workload(400, seed=5)
    put_all(kinesis_client, stream, payloads)
    argv = [
        "glue_job.py", "--JOB_NAME", "signal-stream-processor",
        "--stream", stream, "--lake_root", f"file://{tmp_path}/lake",
        "--checkpoint", f"file://{tmp_path}/checkpoint",
        "--kinesis_endpoint_url", kinesis_endpoint_url, "--trigger_seconds", "0.5",
        "--max_records_per_batch", "200", "--publish_metrics", "false",
        "--max_event_behind_seconds", str(MAX_BEHIND_FOR_DATED_DATA_S),
        "--quality_band_overrides", '{"4G": {"excellent_min": -75}}',
    ]  # fmt: skip
    failures: list[BaseException] = []

    def run() -> None:
        try:
            glue_job.main(argv)
        except BaseException as exc:  # reported by the test thread
            failures.append(exc)

    runner = threading.Thread(target=run, daemon=True)
    runner.start()
    deadline, seen = time.monotonic() + 240, 0
    try:
        while time.monotonic() < deadline and not failures:
            try:
                seen = lake_frames(f"{tmp_path}/lake")["rows_in"]
            except Exception:  # no batch written yet
                seen = 0
            if seen >= len(payloads):
                break
            time.sleep(0.5)
    finally:
        for query in spark.streams.active:
            query.stop()
        runner.join(timeout=60)
    assert not failures, failures
    assert seen == len(payloads)
    assert_lake_matches_oracle(f"{tmp_path}/lake", events, duplicates)
    init, commit = glue_job_standin.EVENTS[-2:]
    assert init[0] == "init"
    assert init[1][0] == "signal-stream-processor"
    assert commit == ("commit", None)


def test_job_arguments_map_onto_the_settings() -> None:
    args = {
        "JOB_NAME": "j", "stream": "s", "lake_root": "s3://b/lake", "checkpoint": "s3://b/cp",
        "trigger_seconds": "15", "dedup_watermark": "5 minutes", "resume_from_lake": "false",
        "quality_band_overrides": '{"5G": {"good_min": -95}}', "region": "eu-west-1",
    }  # fmt: skip
    settings = glue_job.settings_from_args(args)
    assert (settings.stream_name, settings.lake_root, settings.checkpoint_location) == (
        "s", "s3://b/lake", "s3://b/cp",
    )  # fmt: skip
    assert settings.trigger_seconds == 15.0
    assert settings.dedup_watermark == "5 minutes"
    assert settings.resume_from_lake is False
    assert settings.quality_band_overrides == {"5G": {"good_min": -95}}
    assert settings.aws_region == "eu-west-1"
    assert settings.publish_metrics is True  # on Glue the consumer lag goes to CloudWatch
    assert glue_job.present_optional(["x", "--region", "r", "--stream", "s"]) == ["region"]


def test_a_bad_job_argument_is_one_plain_sentence() -> None:
    base = {"JOB_NAME": "j", "stream": "s", "lake_root": "s3://b/l", "checkpoint": "s3://b/c"}
    with pytest.raises(glue_job.GlueArgumentError, match=r"^job argument trigger_seconds: "):
        glue_job.settings_from_args({**base, "trigger_seconds": "-1"})
    with pytest.raises(glue_job.GlueArgumentError, match=r"quality_band_overrides is not JSON"):
        glue_job.settings_from_args({**base, "quality_band_overrides": "{4G"})
