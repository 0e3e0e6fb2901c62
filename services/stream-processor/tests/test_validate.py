"""Validation of raw records (pure Python over Arrow, no Spark)."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest
from processor_testdata import MALFORMED, encode, make_event, source_batch

from signal_common.schema import EVENT_FIELDS, TelemetryEvent
from signal_processor.core.validate import VALIDATED_SCHEMA, classify, validate_batch


def _source_batch(payloads: list[bytes]) -> pa.RecordBatch:
    return source_batch(payloads, dt.datetime(2026, 11, 23, 10, 30, tzinfo=dt.UTC))


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
    rows = out.to_pylist()  # valid rows first, then the invalid ones
    assert [(r["is_valid"], r["sequence_number"]) for r in rows] == [
        (True, "100"),
        (True, "102"),
        (False, "101"),
    ]
    assert rows[0]["dedup_key"] == "evt-000001"
    assert rows[0]["event_time"] == dt.datetime(2026, 11, 23, 10, 0, 7, tzinfo=dt.UTC)
    assert rows[0]["raw_payload"] is None
    assert rows[0]["reason"] is None
    bad = rows[2]
    assert (bad["reason"], bad["dedup_key"]) == ("invalid_json", "shardId-000000000001:101:0")
    assert bad["raw_payload"] == MALFORMED[0][0].decode()
    assert bad["event_id"] is None


def test_validated_columns_hold_exactly_the_model_values() -> None:
    events = [make_event(i, satellites=None if i % 2 else 7) for i in range(1, 6)]
    events.append(make_event(6, event_time="2026-11-23T12:00:07.25+02:00", speed_kmh=3))
    out = validate_batch(_source_batch([encode(e) for e in events]))
    for row, event in zip(out.to_pylist(), events, strict=True):
        model = TelemetryEvent.model_validate(event)
        assert {f.name: row[f.name] for f in EVENT_FIELDS} == {
            f.name: getattr(model, f.name) for f in EVENT_FIELDS
        }


def test_batch_of_only_invalid_records() -> None:
    payloads = [payload for payload, _ in MALFORMED]
    out = validate_batch(_source_batch(payloads))
    assert out.schema == VALIDATED_SCHEMA
    assert out["is_valid"].to_pylist() == [False] * len(payloads)
    assert out["reason"].to_pylist() == [reason for _, reason in MALFORMED]
    assert out["sequence_number"].to_pylist() == [str(100 + i) for i in range(len(payloads))]
