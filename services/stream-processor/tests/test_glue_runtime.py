"""The Glue bundle, installed as Glue 6.0 installs it, runs the Glue entry point end to end on
Glue 6.0's Python and library versions, with the lake and the checkpoint on S3.

The environment (tests/glue6_env.py) is pyenv's Python 3.13 with exactly the modules Glue 6.0
preinstalls (glue_packaging/bundle.py, GLUE_6_PREINSTALLED: pyarrow 23.0.1, boto3/botocore
1.42.84, pandas 2.3.3, numpy 2.4.4, PySpark 4.1.1, ... with its sources). The bundle is built by
bundle.py from the wheels `./pants package` makes, installed with the manifest's installer
options and nothing else, and the job's own code is the bundle's: the test process's sources
are not on the job's path. The job script runs against kinesalite, moto's S3 (lake and
checkpoint at s3://) and moto's CloudWatch, and the lake is checked against the pandas oracle.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from glue6_env import (
    HERE,
    freeze,
    glue_base_env,
    install_bundle,
    job_python,
    pip_check,
    s3_filesystem_classes,
    spark_conf_dir,
)
from glue_packaging.bundle import GLUE_6_PREINSTALLED, NOT_ON_GLUE, REPLACES_GLUE
from processor_testdata import (
    MAX_BEHIND_FOR_DATED_DATA_S,
    assert_lake_matches_oracle,
    lake_frames,
    put_all,
    workload,
)

ROOT = Path.cwd()  # the sandbox / repository root: 3rdparty/, services/, the packaged wheels
BUNDLER = ROOT / "services" / "stream-processor" / "glue_packaging" / "bundle.py"
EVENTS = 300


@pytest.fixture(scope="module")
def glue_env() -> Path:
    env, seconds = glue_base_env()
    print(f"Glue 6.0 environment {env.name}: ready in {seconds:.1f} s")
    return env


@pytest.fixture(scope="module")
def bundle(glue_env: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """The bundle as package.sh makes it: bundle.py over the wheels `./pants package` built."""
    out = tmp_path_factory.mktemp("glue") / "stream-processor"
    subprocess.run(
        [str(glue_env / "bin" / "python"), str(BUNDLER), "--dist", str(ROOT), "--out", str(out)],
        check=True,
        cwd=ROOT,
    )
    return out, json.loads((out / "manifest.json").read_text())


def _job_arguments(stream: str, bucket: str, endpoints: dict[str, str]) -> list[str]:
    """What Glue passes the script: its own arguments, the deploy's DefaultArguments
    (deploy/aws/signal_aws/stacks/processing.py) and, for this machine, the local endpoints."""
    glue = {
        "--JOB_ID": "j_0123", "--JOB_RUN_ID": "jr_0123", "--JOB_NAME": "signal-stream-processor",
        "--job-bookmark-option": "job-bookmark-disable", "--TempDir": f"s3://{bucket}/tmp",
    }  # fmt: skip
    deploy = {
        "--stream": stream, "--region": "us-east-1", "--lake_root": f"s3://{bucket}/lake",
        "--checkpoint": f"s3://{bucket}/checkpoints/processor", "--trigger_seconds": "0.5",
        "--publish_metrics": "true", "--additional-python-modules": "s3://assets/wheels/x.whl",
        "--python-modules-installer-option": "--no-deps",
        "--enable-continuous-cloudwatch-log": "true", "--enable-continuous-log-filter": "true",
        "--enable-metrics": "true", "--enable-observability-metrics": "true",
        "--job-language": "python",
    }  # fmt: skip
    local = {
        "--kinesis_endpoint_url": endpoints["kinesis"], "--s3_endpoint_url": endpoints["s3"],
        "--cloudwatch_endpoint_url": endpoints["s3"], "--max_records_per_batch": "150",
        "--max_event_behind_seconds": str(MAX_BEHIND_FOR_DATED_DATA_S),
    }  # fmt: skip
    return [item for pair in {**glue, **deploy, **local}.items() for item in pair]


def _download(s3: Any, bucket: str, prefix: str, into: Path) -> Path:
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            target = into / item["Key"].removeprefix(prefix)
            target.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(bucket, item["Key"], str(target))
    return into


def _rows_read(s3: Any, bucket: str, into: Path) -> int:
    """Records the job has read by the lake's pipeline_batches on S3 (0 before a batch)."""
    lake = _download(s3, bucket, "lake/pipeline_batches/", into / "lake" / "pipeline_batches")
    if not any(lake.rglob("*.parquet")):
        return 0
    import duckdb

    files = f"read_parquet('{lake}/**/*.parquet')"
    row = duckdb.connect().execute(f"SELECT coalesce(sum(rows_in), 0) FROM {files}").fetchone()
    return int(row[0]) if row else 0


def test_the_bundle_runs_the_glue_job_on_glue_6_versions_against_s3(
    glue_env: Path,
    bundle: tuple[Path, dict[str, Any]],
    kinesis_client: Any,
    kinesis_endpoint_url: str,
    moto_endpoint_url: str,
    make_stream: Callable[..., str],
    s3: Any,
    bucket: str,
    tmp_path: Path,
) -> None:
    import boto3

    bundle_dir, manifest = bundle
    python = job_python(glue_env, tmp_path / "glue-python")
    before, broken_before = freeze(python), pip_check(python)
    assert before == GLUE_6_PREINSTALLED

    print(install_bundle(python, bundle_dir, manifest))
    after = freeze(python)
    changed = {name for name in before if after.get(name) != before[name]}
    assert changed == set(REPLACES_GLUE), "the bundle replaced a module Glue 6.0 ships"
    broken = pip_check(python) - broken_before
    unmet = {line.split(" requires ")[1].split(",")[0] for line in broken}
    assert unmet == set(NOT_ON_GLUE), "the bundle leaves requirements unmet"

    stream = make_stream(shards=2)
    payloads, events, duplicates = workload(EVENTS, seed=11)
    put_all(kinesis_client, stream, payloads)
    conf = spark_conf_dir(
        tmp_path / "spark-conf",
        classes=s3_filesystem_classes(python),
        s3_endpoint_url=moto_endpoint_url,
    )
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PYTHON", "PYSPARK", "SPARK", "PEX", "VIRTUAL_ENV"))
    }
    env.update(
        SPARK_CONF_DIR=str(conf),
        SPARK_LOCAL_IP="127.0.0.1",
        PYSPARK_PYTHON=str(python),
        PYSPARK_DRIVER_PYTHON=str(python),
    )
    argv = [
        str(python), "-I", str(HERE / "glue6_runtime" / "run_glue_job.py"),
        str(bundle_dir / manifest["script"]), str(HERE / "awsglue"),
        *_job_arguments(stream, bucket, {"kinesis": kinesis_endpoint_url, "s3": moto_endpoint_url}),
    ]  # fmt: skip
    log = tmp_path / "job.log"
    started = time.monotonic()
    with log.open("w") as out:
        job = subprocess.Popen(argv, env=env, cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT)
        seen = 0
        try:
            deadline = time.monotonic() + 600  # a loaded 2-core machine: minutes
            while time.monotonic() < deadline and job.poll() is None and seen < len(payloads):
                time.sleep(3)
                seen = _rows_read(s3, bucket, tmp_path / "poll")
        finally:
            job.send_signal(signal.SIGTERM)
            try:
                job.wait(timeout=120)
            except subprocess.TimeoutExpired:
                job.kill()
                job.wait()
    output = log.read_text()
    print(f"job ran {time.monotonic() - started:.1f} s; its output:\n{output[-4000:]}")
    assert seen == len(payloads), f"the job read {seen} of {len(payloads)} records"
    assert job.returncode == 0, output[-4000:]

    # the job's code is the bundle's, installed into Glue's environment
    imported = next(line for line in output.splitlines() if line.startswith("signal_processor="))
    assert imported.startswith(f"signal_processor={python.parent.parent}/lib/python3.13/site-")
    events_line = next(line for line in output.splitlines() if line.startswith("job_events="))
    job_events = json.loads(events_line.removeprefix("job_events="))
    assert [e[0] for e in job_events] == ["init", "commit"]

    # Spark's checkpoint and the source's progress log are on S3, as on Glue
    listed = s3.list_objects_v2(Bucket=bucket, Prefix="checkpoints/processor/")
    keys = {item["Key"].split("/")[2] for item in listed.get("Contents", [])}
    assert {"offsets", "commits", "kinesis-source", "metadata"} <= keys, keys

    lake = _download(s3, bucket, "lake/", tmp_path / "lake")
    assert lake_frames(str(lake))["rows_in"] == len(payloads)
    assert_lake_matches_oracle(str(lake), events, duplicates)

    cloudwatch = boto3.client("cloudwatch", region_name="us-east-1", endpoint_url=moto_endpoint_url)
    metrics = cloudwatch.list_metrics(Namespace="SignalStream/StreamProcessor")["Metrics"]
    assert {"MetricName": "MillisBehindLatest", "Namespace": "SignalStream/StreamProcessor",
            "Dimensions": [{"Name": "Stream", "Value": stream}]} in metrics  # fmt: skip
