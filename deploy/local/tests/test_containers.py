"""SIGNAL_LOCAL_AWS: the helper by default, containers where Docker runs, a plain sentence when
containers are chosen without a Docker engine."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import boto3
import pytest

from signal_local import containers

NO_DOCKER = containers.docker_unavailable_reason()


def test_the_helper_is_the_default_and_a_wrong_choice_is_named(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(containers.BACKEND_ENV, raising=False)
    assert containers.backend() == "helper"
    monkeypatch.setenv(containers.BACKEND_ENV, " Containers ")
    assert containers.backend() == "containers"
    monkeypatch.setenv(containers.BACKEND_ENV, "docker")
    with pytest.raises(ValueError, match="SIGNAL_LOCAL_AWS='docker' is not one of helper"):
        containers.backend()


@pytest.mark.skipif(NO_DOCKER is None, reason="a Docker engine runs here")
def test_containers_without_docker_end_the_session_with_one_sentence(tmp_path: Path) -> None:
    probe = tmp_path / "test_probe.py"
    probe.write_text(
        "def test_needs_kinesis(kinesis_endpoint_url):\n    assert kinesis_endpoint_url\n",
        "utf-8",
    )
    env = {
        **os.environ,
        # absolute: the probe runs in its own directory
        "PYTHONPATH": os.pathsep.join(os.path.abspath(p) for p in sys.path if p),
        containers.BACKEND_ENV: "containers",
    }
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            str(probe),
            "-p",
            "signal_testing.pytest_plugin",
            "-p",
            "no:cacheprovider",
            "-q",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = result.stdout + result.stderr
    assert result.returncode == pytest.ExitCode.USAGE_ERROR, output
    assert "SIGNAL_LOCAL_AWS=containers needs a running Docker engine" in output
    assert "unset SIGNAL_LOCAL_AWS (or set it to helper)" in output
    assert "Traceback" not in output


@pytest.mark.skipif(NO_DOCKER is not None, reason=f"no Docker engine: {NO_DOCKER}")
def test_containers_serve_kinesis_and_the_glue_and_s3_apis() -> None:
    kinesis = containers.start_localstack_kinesis()
    moto = containers.start_moto_container()
    try:
        client = boto3.client("kinesis", endpoint_url=kinesis.url, region_name="us-east-1")
        stream = f"probe-{uuid.uuid4().hex[:8]}"
        client.create_stream(StreamName=stream, ShardCount=1)
        client.get_waiter("stream_exists").wait(StreamName=stream)
        client.put_record(StreamName=stream, Data=b"hello", PartitionKey="k")
        shard = client.list_shards(StreamName=stream)["Shards"][0]["ShardId"]
        iterator = client.get_shard_iterator(
            StreamName=stream, ShardId=shard, ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        assert [r["Data"] for r in client.get_records(ShardIterator=iterator)["Records"]] == [
            b"hello"
        ]
        glue = boto3.client("glue", endpoint_url=moto.url, region_name="us-east-1")
        glue.create_database(DatabaseInput={"Name": "probe"})
        assert glue.get_database(Name="probe")["Database"]["Name"] == "probe"
        s3 = boto3.client("s3", endpoint_url=moto.url, region_name="us-east-1")
        s3.create_bucket(Bucket="probe")
        assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["probe"]
    finally:
        kinesis.stop()
        moto.stop()
