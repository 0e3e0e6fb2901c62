"""Dead letters bound for S3 (a local moto server): written as one object when the run ends,
none when nothing was dead-lettered, kept in the local spool file (and said so) when the
upload fails, and a malformed destination refused in one sentence before anything is sent."""

from __future__ import annotations

import datetime as dt
import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from signal_producer.adapters.dead_letters import DeadLetterTargetError, dead_letter_location
from signal_producer.adapters.sources import S3Location
from signal_producer.cli import app

Rows = list[dict[str, Any]]
NOW = dt.datetime(2026, 12, 1, 14, 5, 9, tzinfo=dt.UTC)


def test_a_key_is_kept_and_a_prefix_gets_one_object_per_run() -> None:
    assert dead_letter_location("s3://b/dl/run.jsonl", stream="s", now=NOW) == S3Location(
        "b", "dl/run.jsonl"
    )
    first = dead_letter_location("s3://b/dead-letters/producer/", stream="logs", now=NOW)
    second = dead_letter_location("s3://b/dead-letters/producer/", stream="logs", now=NOW)
    assert first.bucket == "b"
    assert first.key.startswith("dead-letters/producer/logs-20261201T140509Z-")
    assert first.key.endswith(".jsonl")
    assert first.key != second.key  # two runs started in the same second do not collide
    assert dead_letter_location("s3://b", stream="s", now=NOW).key.startswith("s-20261201T")


@pytest.mark.parametrize("text", ["s3:///key.jsonl", "s3:b/key", "s3://b/k?versionId=1"])
def test_a_malformed_destination_is_refused(text: str) -> None:
    with pytest.raises(DeadLetterTargetError, match=r"expected s3://BUCKET/KEY\.jsonl"):
        dead_letter_location(text, stream="s", now=NOW)


@dataclass
class Run:
    """One `signal-producer generate` of 50 events into a fresh stream."""

    stream: str
    result: Any
    spool_dir: Path  # where the run's spool file was created
    sent: Rows  # what the stream holds afterwards

    @property
    def summary(self) -> dict[str, Any]:
        return json.loads(self.result.stdout.strip().splitlines()[-1])


# every send fails, twice: all 50 records are dead-lettered
ALL_FAIL = ("--fault-rate", "1.0", "--fault-rounds", "5", "--max-attempts", "2")


@pytest.fixture
def run(
    s3_env: None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    make_stream: Callable[..., str],
    kinesis_endpoint_url: str,
    read_stream: Callable[[str], Rows],
) -> Callable[..., Run]:
    """Run the CLI with a dead-letter destination (and options); the spool file is created in
    a directory of the test's own (tempfile's default, redirected)."""
    spool_dir = tmp_path / "spool"
    spool_dir.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spool_dir))

    def invoke(dead_letter: str, *options: str) -> Run:
        stream = make_stream()
        result = CliRunner().invoke(
            app,
            [
                "generate", "--events", "50", "--stream", stream,
                "--endpoint-url", kinesis_endpoint_url, "--dead-letter", dead_letter,
                *options, "--no-progress",
            ],
        )  # fmt: skip
        return Run(stream, result, spool_dir, read_stream(stream))

    return invoke


def _objects(s3: Any, bucket: str) -> list[str]:
    return [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]


def test_dead_letters_of_a_run_become_one_object_under_the_prefix(
    s3: Any, bucket: str, run: Callable[..., Run]
) -> None:
    done = run(f"s3://{bucket}/dead-letters/", *ALL_FAIL)
    assert done.result.exit_code == 1, done.result.output
    (key,) = _objects(s3, bucket)
    assert key.startswith(f"dead-letters/{done.stream}-")
    assert key.endswith(".jsonl")
    body = s3.get_object(Bucket=bucket, Key=key)
    assert body["ContentType"] == "application/x-ndjson"
    rows = [json.loads(line) for line in body["Body"].read().decode("utf-8").splitlines()]
    assert len(rows) == 50
    assert {r["error_code"] for r in rows} == {"ProvisionedThroughputExceededException"}
    assert len({r["data"] for r in rows}) == 50  # each record once, with its payload
    assert done.summary["dead_lettered"] == 50
    assert done.summary["dead_letter"] == f"s3://{bucket}/{key}"
    assert f"50 record(s) dead-lettered: s3://{bucket}/{key}" in done.result.stderr
    assert list(done.spool_dir.iterdir()) == []  # the spool file went once uploaded
    assert done.sent == []


def test_a_run_without_dead_letters_writes_no_object(
    s3: Any, bucket: str, run: Callable[..., Run]
) -> None:
    done = run(f"s3://{bucket}/dead-letters/run.jsonl")
    assert done.result.exit_code == 0, done.result.output
    assert (done.summary["sent"], done.summary["dead_lettered"]) == (50, 0)
    assert "dead_letter" not in done.summary
    assert _objects(s3, bucket) == []
    assert list(done.spool_dir.iterdir()) == []
    assert len(done.sent) == 50


def test_a_failed_upload_keeps_the_dead_letters_in_the_spool_file_and_says_where(
    run: Callable[..., Run], read_jsonl: Callable[[Path], Rows]
) -> None:
    target = "s3://no-such-bucket-dl/dead.jsonl"
    done = run(target, *ALL_FAIL)
    assert done.result.exit_code == 1, done.result.output
    (spool,) = done.spool_dir.iterdir()
    assert len(read_jsonl(spool)) == 50
    stderr = done.result.stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1
    assert errors[0].startswith(f"error: could not upload the dead letters to {target} at http")
    assert "NoSuchBucket" in errors[0]
    assert errors[0].endswith(f"they are in {spool}")
    assert f"50 record(s) dead-lettered: {spool}" in stderr
    assert done.summary["dead_letter"] == str(spool)


def test_a_malformed_destination_fails_in_one_sentence_before_sending(
    run: Callable[..., Run],
) -> None:
    done = run("s3:///dead.jsonl")
    assert done.result.exit_code == 2, done.result.output
    lines = [line for line in done.result.stderr.splitlines() if line.strip()]
    assert lines == [
        "error: 's3:///dead.jsonl' is not an S3 dead-letter destination; expected "
        "s3://BUCKET/KEY.jsonl or s3://BUCKET/PREFIX/"
    ]
    assert done.sent == []
    assert list(done.spool_dir.iterdir()) == []


def test_a_run_that_cannot_start_leaves_no_spool_file(
    s3: Any, bucket: str, run: Callable[..., Run]
) -> None:
    done = run(f"s3://{bucket}/dead-letters/", "--stream", "no-such-stream")
    assert done.result.exit_code == 2, done.result.output
    assert "stream 'no-such-stream' does not exist" in done.result.stderr
    assert list(done.spool_dir.iterdir()) == []
    assert _objects(s3, bucket) == []
