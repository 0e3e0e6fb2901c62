"""Validation of raw records (pure Python over Arrow, no Spark)."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest
from processor_testdata import MALFORMED, encode, make_event, source_batch

from signal_common.schema import EVENT_FIELDS, TelemetryEvent
from signal_processor.core.validate import (
    VALIDATED_SCHEMA,
    TimeBounds,
    classify,
    validate_batch,
)


def _source_batch(payloads: list[bytes]) -> pa.RecordBatch:
    return source_batch(payloads, dt.datetime(2026, 11, 23, 10, 30, tzinfo=dt.UTC))


@pytest.mark.parametrize(
    ("payload", "reason"), [(p, r) for p, r in MALFORMED if r != "implausible_time"]
)
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


def test_event_times_too_far_from_arrival_are_quarantined_as_implausible() -> None:
    arrival = dt.datetime(2026, 11, 23, 10, 30, tzinfo=dt.UTC)
    offsets = {  # event time relative to arrival -> quarantined?
        dt.timedelta(minutes=4, seconds=59): False,
        dt.timedelta(minutes=5, seconds=1): True,
        dt.timedelta(days=-29, hours=-23): False,
        dt.timedelta(days=-30, seconds=-1): True,
        dt.timedelta(days=400): True,
    }
    events = [make_event(i, event_time=(arrival + d).isoformat()) for i, d in enumerate(offsets)]
    out = validate_batch(source_batch([encode(e) for e in events], arrival)).to_pylist()
    by_id = {r["sequence_number"]: r for r in out}
    for i, quarantined in enumerate(offsets.values()):
        row = by_id[str(100 + i)]
        assert row["is_valid"] is not quarantined
        assert row["reason"] == ("implausible_time" if quarantined else None)
    ahead = by_id["101"]
    assert ahead["detail"] == "event_time 2026-11-23T10:35:01+00:00 is 0:05:01 ahead of its arrival"
    assert ahead["dedup_key"] == "shardId-000000000001:101:0"
    assert ahead["raw_payload"] == encode(events[1]).decode()


def test_time_bounds_are_settings() -> None:
    arrival = dt.datetime(2026, 11, 23, 10, 30, tzinfo=dt.UTC)
    event = make_event(1, event_time=(arrival + dt.timedelta(minutes=10)).isoformat())
    batch = source_batch([encode(event)], arrival)
    assert validate_batch(batch)["reason"].to_pylist() == ["implausible_time"]
    loose = TimeBounds(max_ahead=dt.timedelta(hours=1))
    assert validate_batch(batch, loose)["is_valid"].to_pylist() == [True]


def test_batch_of_only_invalid_records() -> None:
    payloads = [payload for payload, _ in MALFORMED]
    out = validate_batch(_source_batch(payloads))
    assert out.schema == VALIDATED_SCHEMA
    assert out["is_valid"].to_pylist() == [False] * len(payloads)
    assert out["reason"].to_pylist() == [reason for _, reason in MALFORMED]
    assert out["sequence_number"].to_pylist() == [str(100 + i) for i in range(len(payloads))]
