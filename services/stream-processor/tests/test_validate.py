"""Validation of raw records (pure Python over Arrow, no Spark)."""

from __future__ import annotations

import datetime as dt
import random

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


def test_batch_validation_matches_the_record_by_record_rule() -> None:
    """The column-wise build and time comparison give what classifying each record and asking
    `TimeBounds.reason` of it gives (the oracle below), on a shuffled mix of valid records,
    every malformed kind and event times on either side of both bounds, to the microsecond."""
    rng = random.Random(7)
    bounds = TimeBounds(max_ahead=dt.timedelta(minutes=5), max_behind=dt.timedelta(days=2))
    edge = dt.timedelta(microseconds=1)
    offsets = [
        bounds.max_ahead, bounds.max_ahead + edge, bounds.max_ahead - edge,
        -bounds.max_behind, -bounds.max_behind - edge, -bounds.max_behind + edge,
        dt.timedelta(0), dt.timedelta(days=-400), dt.timedelta(days=3),
    ]  # fmt: skip
    arrivals: list[dt.datetime] = []
    payloads: list[bytes] = []
    base = dt.datetime(2026, 11, 23, 10, 30, 0, 250_001, tzinfo=dt.UTC)
    for i in range(400):
        arrival = base + dt.timedelta(milliseconds=rng.randrange(60_000))
        kind = rng.random()
        if kind < 0.15:
            payloads.append(rng.choice(MALFORMED)[0])
        else:
            offset = (
                rng.choice(offsets) if kind < 0.5 else dt.timedelta(seconds=rng.randint(-60, 60))
            )
            when = (arrival + offset).astimezone(
                dt.timezone(dt.timedelta(hours=rng.choice((0, 2))))
            )
            payloads.append(encode(make_event(i, event_time=when.isoformat())))
        arrivals.append(arrival)
    batch = pa.RecordBatch.from_pydict(
        {
            "data": pa.array(payloads, pa.binary()),
            "shard_id": ["shardId-000000000003"] * len(payloads),
            "sequence_number": [str(500 + i) for i in range(len(payloads))],
            "sub_sequence_number": pa.array([i % 3 for i in range(len(payloads))], pa.int64()),
            "arrival_time": pa.array(arrivals, pa.timestamp("us", tz="UTC")),
            "read_time": pa.array([base] * len(payloads), pa.timestamp("us", tz="UTC")),
        }
    )

    valid, invalid = [], []
    for i, data in enumerate(payloads):  # the oracle: one record at a time
        event, reason, detail = classify(data)
        if event is not None and (late := bounds.reason(event.event_time, arrivals[i])):
            event, reason, detail = None, "implausible_time", late
        if event is not None:
            valid.append(
                (str(500 + i), True, {f.name: getattr(event, f.name) for f in EVENT_FIELDS})
            )
        else:
            invalid.append((str(500 + i), False, (reason, detail, data.decode("utf-8", "replace"))))

    out = validate_batch(batch, bounds)
    assert out.schema == VALIDATED_SCHEMA
    got = [
        (
            r["sequence_number"],
            r["is_valid"],
            {f.name: r[f.name] for f in EVENT_FIELDS}
            if r["is_valid"]
            else (r["reason"], r["detail"], r["raw_payload"]),
        )
        for r in out.to_pylist()
    ]
    assert got == valid + invalid
    assert {reason for _, _, (reason, _, _) in invalid} >= {"implausible_time", "invalid_json"}
    assert len(valid) > 200
