"""Against a local kinesalite: fault runs lose nothing and duplicate nothing; the CLI end to end."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
from typer.testing import CliRunner

from signal_producer.adapters.faults import FaultInjectingKinesis
from signal_producer.adapters.files import DeadLetterSink, GroundTruthSink
from signal_producer.adapters.kinesis import KinesisWriter, WriterConfig, make_kinesis_client
from signal_producer.cli import app
from signal_producer.core import GeneratorConfig, generate_records

Rows = list[dict[str, Any]]


def test_fault_run_delivers_every_record_exactly_once(
    make_stream: Callable[..., str],
    kinesis_endpoint_url: str,
    read_stream: Callable[[str], Rows],
    read_jsonl: Callable[[Path], Rows],
    tmp_path: Path,
) -> None:
    stream = make_stream(shards=4)
    records = list(
        generate_records(
            GeneratorConfig(events=6000, seed=21, duplicate_rate=0.03, malformed_rate=0.05)
        )
    )
    client = FaultInjectingKinesis(
        make_kinesis_client(region="us-east-1", endpoint_url=kinesis_endpoint_url, concurrency=4),
        entry_rate=0.3,
        rounds=3,
        call_rate=0.03,
        seed=4,
    )
    truth_path = tmp_path / "truth.jsonl"
    writer = KinesisWriter(
        client,
        WriterConfig(
            stream_name=stream,
            concurrency=4,
            max_attempts=10,
            base_backoff_s=0.01,
            max_batch_records=250,
        ),
        dead_letter=DeadLetterSink(tmp_path / "dead.jsonl"),
        ground_truth=GroundTruthSink(truth_path),
    )
    summary = writer.run(records)
    writer.ground_truth.close()  # type: ignore[union-attr]

    # the injected faults really happened, several rounds deep
    failures_per_call = [len(f) for f in client.log.failed]
    assert summary.failed == sum(failures_per_call) > 0.3 * 6000 * 0.8
    assert client.log.whole_call_failures > 0
    dead = read_jsonl(tmp_path / "dead.jsonl")
    assert not dead, Counter((d["error_code"], d["error_message"], d["attempts"]) for d in dead)
    assert summary.retried == summary.failed
    assert summary.dead_lettered == 0
    assert summary.sent == 6000

    # nothing accepted was ever sent again: each (data, key) accepted as often as it was generated
    generated = Counter((r.data.encode(), r.partition_key) for r in records)
    assert client.log.accepted == generated

    truth = pd.DataFrame(read_jsonl(truth_path))
    stream_rows = pd.DataFrame(read_stream(stream))
    assert len(stream_rows) == len(truth) == 6000
    joined = stream_rows.merge(
        truth, on=["shard_id", "sequence_number"], how="outer", suffixes=("_s", "_t"),
        indicator=True,
    )  # fmt: skip
    assert (joined["_merge"] == "both").all()
    assert (joined["data_s"] == joined["data_t"]).all()
    assert (joined["partition_key_s"] == joined["partition_key_t"]).all()
    assert Counter(stream_rows["data"]) == Counter(r.data for r in records)

    # every event exactly once as kind "event"; duplicates re-send an event that is also there
    events = truth[truth["kind"] == "event"]
    assert events["event_id"].is_unique
    assert set(events["event_id"]) == {r.event_id for r in records if r.kind == "event"}
    dups = truth[truth["kind"] == "duplicate"]
    assert len(dups) == sum(r.kind == "duplicate" for r in records) > 0
    assert set(dups["event_id"]) <= set(events["event_id"])
    bad = truth[truth["kind"] == "malformed"]
    assert Counter(bad["reason"]) == Counter(r.reason for r in records if r.kind == "malformed")
    assert truth["sent_at"].str.endswith("Z").all()


def test_cli_generate_writes_parquet_ground_truth(
    make_stream: Callable[..., str],
    kinesis_endpoint_url: str,
    read_stream: Callable[[str], Rows],
    tmp_path: Path,
) -> None:
    stream = make_stream(shards=2)
    truth = tmp_path / "truth.parquet"
    result = CliRunner().invoke(
        app,
        [
            "generate",
            "--events",
            "700",
            "--seed",
            "3",
            "--stream",
            stream,
            "--endpoint-url",
            kinesis_endpoint_url,
            "--ground-truth",
            str(truth),
            "--dead-letter",
            str(tmp_path / "dead.jsonl"),
            "--malformed-rate",
            "0.1",
            "--outage",
            "47015@+0s/+10m",
            "--no-progress",
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads([line for line in result.stdout.splitlines() if line.startswith("{")][-1])
    assert summary["sent"] == 700
    assert summary["dead_lettered"] == 0
    table = pq.read_table(truth).to_pandas()
    assert list(table.columns) == [
        "shard_id", "sequence_number", "partition_key", "kind", "reason", "event_id", "data",
        "sent_at",
    ]  # fmt: skip
    on_stream = pd.DataFrame(read_stream(stream))
    assert sorted(on_stream["sequence_number"]) == sorted(table["sequence_number"])
    assert table["shard_id"].nunique() == 2
    assert set(table.loc[table["kind"] == "malformed", "reason"]) <= {
        "oversize", "invalid_json", "not_an_object", "missing", "wrong_type", "out_of_range",
        "unknown_enum", "extra_field", "implausible_time",
    }  # fmt: skip
    assert not (tmp_path / "dead.jsonl").exists()


def test_cli_exits_nonzero_when_records_are_dead_lettered(
    make_stream: Callable[..., str],
    kinesis_endpoint_url: str,
    read_stream: Callable[[str], Rows],
    read_jsonl: Callable[[Path], Rows],
    tmp_path: Path,
) -> None:
    stream = make_stream(shards=1)
    dead = tmp_path / "dead.jsonl"
    result = CliRunner().invoke(
        app,
        [
            "generate",
            "--events",
            "50",
            "--stream",
            stream,
            "--endpoint-url",
            kinesis_endpoint_url,
            "--dead-letter",
            str(dead),
            "--fault-rate",
            "1.0",
            "--fault-rounds",
            "5",
            "--max-attempts",
            "2",
            "--no-progress",
        ],
    )
    assert result.exit_code == 1
    rows = read_jsonl(dead)
    assert len(rows) == 50
    assert {r["error_code"] for r in rows} == {"ProvisionedThroughputExceededException"}
    assert {r["attempts"] for r in rows} == {2}
    assert read_stream(stream) == []


def test_sigterm_flushes_in_flight_batches_and_summarises(
    make_stream: Callable[..., str],
    kinesis_endpoint_url: str,
    read_stream: Callable[[str], Rows],
    read_jsonl: Callable[[Path], Rows],
    tmp_path: Path,
) -> None:
    stream = make_stream(shards=2)
    truth = tmp_path / "truth.jsonl"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "signal_producer.cli",
            "generate",
            "--events",
            "1000000",
            "--stream",
            stream,
            "--endpoint-url",
            kinesis_endpoint_url,
            "--target-rps",
            "400",
            "--ground-truth",
            str(truth),
            "--dead-letter",
            str(tmp_path / "dead.jsonl"),
            "--no-progress",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 90
        while not (truth.exists() and truth.stat().st_size) and time.monotonic() < deadline:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, stderr[-2000:]
    summary = json.loads(stdout.strip().splitlines()[-1])
    assert summary["interrupted"] is True
    assert 0 < summary["read"] < 1_000_000
    # everything taken from the source was flushed: sent, none left behind
    assert summary["sent"] == summary["read"]
    assert summary["dead_lettered"] == 0
    assert len(read_jsonl(truth)) == summary["sent"] == len(read_stream(stream))


def test_cli_replay_reports_bad_rows_and_sends_the_rest(
    make_stream: Callable[..., str],
    kinesis_endpoint_url: str,
    read_stream: Callable[[str], Rows],
    sample_csv: Path,
    tmp_path: Path,
) -> None:
    stream = make_stream(shards=2)
    lines = sample_csv.read_text("utf-8").splitlines()
    broken = [*lines[:3], lines[3].replace(",IN_SERVICE,", ",SOMETIMES,"), *lines[4:21]]
    source = tmp_path / "mobile_logs.csv"
    source.write_text("\n".join(broken) + "\n", "utf-8")
    result = CliRunner().invoke(
        app,
        [
            "replay", str(source), "--base-date", "2026-01-15", "--stream", stream,
            "--endpoint-url", kinesis_endpoint_url, "--partition-key", "event_id",
            "--dead-letter", str(tmp_path / "dead.jsonl"), "--no-progress",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "mobile_logs.csv:4: skipped" in result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert (summary["rows"], summary["bad_rows"], summary["sent"]) == (20, 1, 19)
    on_stream = [json.loads(r["data"]) for r in read_stream(stream)]
    expected = pd.read_csv(source, dtype={"postal_code": str}).drop(index=2)
    assert sorted(e["event_time"] for e in on_stream) == sorted(
        f"2026-01-15T{hour}Z" for hour in expected["hour"]
    )
    assert sorted(e["signal_dbm"] for e in on_stream) == sorted(expected["signal"])
    assert len({r["partition_key"] for r in read_stream(stream)}) == 19
