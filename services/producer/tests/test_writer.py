"""The writer retries exactly the failed entries, in order, and never loses or re-sends one."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from signal_producer.adapters.files import DeadLetterSink, GroundTruthSink
from signal_producer.adapters.kinesis import KinesisWriter, WriterConfig, backoff_seconds
from signal_producer.core.batching import MAX_BYTES_PER_RECORD
from signal_producer.core.records import GeneratedRecord

STREAM = "unit-stream"


def _records(n: int) -> list[GeneratedRecord]:
    return [
        GeneratedRecord(data=f'{{"n":{i}}}', partition_key=f"dev-{i}", event_id=f"e{i}")
        for i in range(n)
    ]


def _request(records: list[GeneratedRecord]) -> dict[str, Any]:
    return {
        "StreamName": STREAM,
        "Records": [{"Data": r.data.encode(), "PartitionKey": r.partition_key} for r in records],
    }


def _response(records: list[GeneratedRecord], failing: set[int]) -> dict[str, Any]:
    results: list[dict[str, Any]] = []
    for i, r in enumerate(records):
        if i in failing:
            results.append(
                {"ErrorCode": "ProvisionedThroughputExceededException", "ErrorMessage": "slow"}
            )
        else:
            n = r.data.split(":")[1].rstrip("}")
            results.append(
                {"ShardId": "shardId-000000000000", "SequenceNumber": f"{1000 + int(n)}"}
            )
    response: dict[str, Any] = {"Records": results}
    if failing:  # the stubbed shape says min 1: Kinesis leaves it out when nothing failed
        response["FailedRecordCount"] = len(failing)
    return response


@pytest.fixture
def stubbed() -> Any:
    client = boto3.client(
        "kinesis",
        region_name="us-east-1",
        endpoint_url="http://127.0.0.1:9",
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def _writer(client: Any, tmp_path: Path, **config: Any) -> KinesisWriter:
    return KinesisWriter(
        client,
        WriterConfig(stream_name=STREAM, concurrency=1, **config),
        dead_letter=DeadLetterSink(tmp_path / "dead.jsonl"),
        ground_truth=GroundTruthSink(tmp_path / "truth.jsonl"),
        sleep=lambda seconds: None,
    )


def test_only_failed_entries_are_retried_in_order(
    stubbed: Any, tmp_path: Path, read_jsonl: Callable[[Path], list[dict[str, Any]]]
) -> None:
    client, stubber = stubbed
    records = _records(6)
    stubber.add_response("put_records", _response(records, {1, 3, 4}), _request(records))
    second = [records[1], records[3], records[4]]
    stubber.add_response("put_records", _response(second, {2}), _request(second))
    third = [records[4]]
    stubber.add_response("put_records", _response(third, set()), _request(third))

    writer = _writer(client, tmp_path)
    summary = writer.run(records)
    writer.ground_truth.close()  # type: ignore[union-attr]

    assert (summary.sent, summary.failed, summary.retried, summary.calls) == (6, 4, 4, 3)
    assert summary.dead_lettered == 0
    truth = read_jsonl(tmp_path / "truth.jsonl")
    assert sorted(row["data"] for row in truth) == sorted(r.data for r in records)
    assert sorted(row["sequence_number"] for row in truth) == [str(1000 + i) for i in range(6)]
    assert {row["kind"] for row in truth} == {"event"}
    assert not (tmp_path / "dead.jsonl").exists()


def test_whole_call_throttling_is_retried(stubbed: Any, tmp_path: Path) -> None:
    client, stubber = stubbed
    records = _records(3)
    stubber.add_client_error(
        "put_records",
        service_error_code="ProvisionedThroughputExceededException",
        http_status_code=400,
        expected_params=_request(records),
    )
    stubber.add_client_error(
        "put_records", service_error_code="InternalFailure", http_status_code=500
    )
    stubber.add_response("put_records", _response(records, set()), _request(records))
    summary = _writer(client, tmp_path).run(records)
    assert (summary.sent, summary.failed, summary.retried, summary.calls) == (3, 6, 6, 3)


def test_entries_failing_every_attempt_are_dead_lettered(
    stubbed: Any, tmp_path: Path, read_jsonl: Callable[[Path], list[dict[str, Any]]]
) -> None:
    client, stubber = stubbed
    records = _records(4)
    stubber.add_response("put_records", _response(records, {0, 2}), _request(records))
    retry = [records[0], records[2]]
    stubber.add_response("put_records", _response(retry, {1}), _request(retry))
    writer = _writer(client, tmp_path, max_attempts=2)
    summary = writer.run(records)
    assert (summary.sent, summary.dead_lettered) == (3, 1)
    dead = read_jsonl(tmp_path / "dead.jsonl")
    assert [(d["data"], d["error_code"], d["attempts"]) for d in dead] == [
        (records[2].data, "ProvisionedThroughputExceededException", 2)
    ]


def test_unrecoverable_call_error_dead_letters_and_stops(
    stubbed: Any, tmp_path: Path, read_jsonl: Callable[[Path], list[dict[str, Any]]]
) -> None:
    client, stubber = stubbed
    records = _records(5)
    stubber.add_client_error(
        "put_records", service_error_code="ResourceNotFoundException", http_status_code=400
    )
    summary = _writer(client, tmp_path).run(records)
    assert summary.fatal_error is not None
    assert "ResourceNotFoundException" in summary.fatal_error
    assert summary.sent == 0
    dead = read_jsonl(tmp_path / "dead.jsonl")
    assert sorted(d["data"] for d in dead) == sorted(r.data for r in records)


def test_record_over_1_mib_is_dead_lettered_without_sending(
    stubbed: Any, tmp_path: Path, read_jsonl: Callable[[Path], list[dict[str, Any]]]
) -> None:
    client, stubber = stubbed
    key = "dev-big"
    big = GeneratedRecord(data="x" * (MAX_BYTES_PER_RECORD + 1 - len(key)), partition_key=key)
    fits = GeneratedRecord(data="y" * (MAX_BYTES_PER_RECORD - len(key)), partition_key=key)
    small = _records(2)
    sent = [small[0], fits, small[1]]
    ok = {
        "Records": [
            {"ShardId": "shardId-000000000000", "SequenceNumber": str(i)} for i in range(3)
        ],
    }
    stubber.add_response("put_records", ok, _request(sent))  # the big one is not in the call
    summary = _writer(client, tmp_path).run([small[0], big, fits, small[1]])
    assert (summary.sent, summary.rejected, summary.dead_lettered) == (3, 1, 1)
    dead = read_jsonl(tmp_path / "dead.jsonl")
    assert len(dead) == 1
    assert dead[0]["error_code"] == "RecordTooLarge"
    assert dead[0]["attempts"] == 0
    assert len(dead[0]["data"]) == len(big.data)


def test_backoff_is_exponential_capped_and_jittered() -> None:
    rng = random.Random(1)
    for attempt in range(1, 12):
        ceiling = min(2.0, 0.05 * 2 ** (attempt - 1))
        delays = [backoff_seconds(attempt, base=0.05, cap=2.0, rng=rng) for _ in range(200)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(set(delays)) > 100  # jittered, not a fixed schedule
