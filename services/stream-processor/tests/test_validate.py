"""Validation of raw records (pure Python over Arrow, no Spark)."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest
from processor_testdata import MALFORMED, encode, make_event

from signal_processor.core.validate import VALIDATED_SCHEMA, classify, validate_batch


def _source_batch(payloads: list[bytes]) -> pa.RecordBatch:
    n = len(payloads)
    now = dt.datetime(2026, 11, 23, 10, 30, tzinfo=dt.UTC)
    return pa.RecordBatch.from_pydict(
        {
            "data": payloads,
            "shard_id": ["shardId-000000000001"] * n,
            "sequence_number": [str(100 + i) for i in range(n)],
            "sub_sequence_number": [0] * n,
            "arrival_time": [now] * n,
        },
        schema=pa.schema(
            [
                ("data", pa.binary()),
                ("shard_id", pa.string()),
                ("sequence_number", pa.string()),
                ("sub_sequence_number", pa.int64()),
                ("arrival_time", pa.timestamp("us", tz="UTC")),
            ]
        ),
    )


@pytest.mark.parametrize(("payload", "reason"), MALFORMED)
def test_each_malformed_record_gets_its_reason(payload: bytes, reason: str) -> None:
    event, got, detail = classify(payload)
    assert event is None
    assert got == reason
    assert detail


def test_valid_record_is_parsed() -> None:
    event, reason, _ = classify(encode(make_event(3)))
    assert reason is None
    assert event.signal_dbm == -81  # type: ignore[union-attr]


def test_validate_batch_routes_rows() -> None:
    payloads = [encode(make_event(1)), MALFORMED[0][0], encode(make_event(2))]
    out = validate_batch(_source_batch(payloads))
    assert out.schema == VALIDATED_SCHEMA
    rows = out.to_pylist()
    assert [r["is_valid"] for r in rows] == [True, False, True]
    assert rows[0]["dedup_key"] == "evt-000001"
    assert rows[0]["event_time"] == dt.datetime(2026, 11, 23, 10, 0, 7, tzinfo=dt.UTC)
    assert rows[0]["raw_payload"] is None
    bad = rows[1]
    assert (bad["reason"], bad["dedup_key"]) == ("invalid_json", "shardId-000000000001:101:0")
    assert bad["raw_payload"] == MALFORMED[0][0].decode()
    assert bad["event_id"] is None
