"""The generator: deterministic per seed, scenario rates within tolerance, real defects."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import math
from typing import Any

import pandas as pd
import pytest
from pydantic import ValidationError

from signal_common.schema import (
    EVENT_FIELD_NAMES,
    MAX_EVENT_BYTES,
    QUARANTINE_REASONS,
    event_to_json,
    field_errors,
    validate_event,
)
from signal_producer.core import GeneratorConfig, generate_records
from signal_producer.core.geo import postal_areas
from signal_producer.core.scenarios import (
    LateDelay,
    ScenarioError,
    parse_late_delay,
    parse_outage,
)

START = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)


def _within(observed: int, n: int, p: float) -> bool:
    """Observed count within 5 standard deviations of a binomial(n, p) mean."""
    return abs(observed - n * p) <= 5 * math.sqrt(n * p * (1 - p)) + 1


def quarantine_reasons(data: str, *, sent_around: dt.datetime | None = None) -> list[str]:
    """What a consumer finds wrong with a record: an oracle written from the schema's contract
    (and, given roughly when it is sent, the event time's plausibility: a day either way)."""
    if len(data.encode("utf-8")) > MAX_EVENT_BYTES:
        return ["oversize"]
    try:
        parsed = json.loads(data)
    except ValueError:
        return ["invalid_json"]
    if not isinstance(parsed, dict):
        return ["not_an_object"]
    try:
        validate_event(parsed)
    except ValidationError as exc:
        return [e.reason for e in field_errors(exc)]
    if sent_around is not None:
        event_time = dt.datetime.fromisoformat(parsed["event_time"].replace("Z", "+00:00"))
        if abs(event_time - sent_around) > dt.timedelta(days=1):
            return ["implausible_time"]
    return []


def test_same_seed_same_records_other_seed_other_records() -> None:
    config = GeneratorConfig(
        events=2000, seed=42, start_time=START, duplicate_rate=0.05, malformed_rate=0.05,
        late_rate=0.1,
    )  # fmt: skip
    first = list(generate_records(config))
    again = list(generate_records(config))
    other = list(generate_records(GeneratorConfig(events=2000, seed=43, start_time=START)))
    assert first == again
    assert [r.data for r in first] != [r.data for r in other]
    assert len(first) == 2000


def test_events_are_canonical_valid_and_keyed_by_device() -> None:
    records = list(generate_records(GeneratorConfig(events=3000, seed=1, start_time=START)))
    codes = {a.code for a in postal_areas()}
    for record in records:
        payload = json.loads(record.data)
        assert record.kind == "event"
        assert record.reason is None
        assert event_to_json(validate_event(payload)) == record.data
        assert record.partition_key == payload["device_id"]
        assert record.event_id == payload["event_id"]
        assert payload["postal_code"] in codes
    assert len({r.event_id for r in records}) == len(records)


def test_distributions_are_realistic() -> None:
    records = generate_records(GeneratorConfig(events=20_000, seed=3, start_time=START))
    df = pd.DataFrame([json.loads(r.data) for r in records])
    precision = df.groupby("provider")["gps_precision_m"].median()
    assert precision["gps"] < 10 < precision["fused"] < 30 < 100 < precision["network"] < 2000
    signal = df.groupby("network_type")["signal_dbm"].mean()
    assert signal["2G"] > signal["3G"] > signal["4G"] > signal["5G"] > -115
    assert set(df["network_type"]) == {"2G", "3G", "4G", "5G"}
    assert 4 <= df["operator"].nunique() <= 5
    shares = df.groupby("device_id")["operator"].first().value_counts(normalize=True)
    assert shares.iloc[0] > shares.iloc[-1] * 2  # market shares, not uniform
    assert (df["status"] == "IN_SERVICE").mean() > 0.9
    assert df.loc[df["provider"] == "network", "satellites"].isna().all()
    assert df.loc[df["provider"] == "gps", "satellites"].min() >= 6
    vehicle = df.loc[df["activity"] == "IN_VEHICLE", "speed_kmh"].median()
    walking = df.loc[df["activity"] == "WALKING", "speed_kmh"].median()
    assert vehicle > 3 * walking > 0
    assert df["cell_id"].max() < 2**36
    assert df["cell_id"].min() >= 0


def test_scenario_rates_within_tolerance() -> None:
    n = 20_000
    config = GeneratorConfig(
        events=n, seed=5, start_time=START, rate=10.0, duplicate_rate=0.04, malformed_rate=0.06,
        late_rate=0.1, late_delay=LateDelay("mix", 60.0, 3600.0, 7200.0),
    )  # fmt: skip
    records = list(generate_records(config))
    kinds = pd.Series([r.kind for r in records]).value_counts()
    assert _within(int(kinds["duplicate"]), n, 0.04)
    assert _within(int(kinds["malformed"]), n, 0.06)
    reasons = pd.Series([r.reason for r in records if r.kind == "malformed"]).value_counts()
    assert set(reasons.index) == set(QUARANTINE_REASONS)
    for reason in QUARANTINE_REASONS:
        assert _within(int(reasons[reason]), int(kinds["malformed"]), 1 / len(QUARANTINE_REASONS))

    # lateness: event_time behind the record's nominal slot start + i / rate
    lags = []
    for i, r in enumerate(records):
        if r.kind == "event":
            event_time = dt.datetime.fromisoformat(json.loads(r.data)["event_time"])
            lags.append((START + dt.timedelta(seconds=i / 10.0) - event_time).total_seconds())
    lag = pd.Series(lags)
    late = lag > 0.01
    assert _within(int(late.sum()), len(lag), 0.1)
    hours_late = (lag >= 3600).sum()
    assert _within(int(hours_late), len(lag), 0.1 * 0.2)
    assert lag.max() <= 7200.01
    assert (lag >= -0.001).all()


def test_duplicates_are_exact_resends_of_earlier_events() -> None:
    records = list(
        generate_records(GeneratorConfig(events=5000, seed=8, start_time=START, duplicate_rate=0.1))
    )
    seen: dict[str, tuple[str, str]] = {}
    duplicates = 0
    for r in records:
        if r.kind == "duplicate":
            duplicates += 1
            assert seen[r.event_id or ""] == (r.data, r.partition_key)
        else:
            assert r.event_id not in seen
            seen[r.event_id or ""] = (r.data, r.partition_key)
    assert duplicates > 300


def test_each_malformed_record_has_exactly_the_claimed_defect() -> None:
    records = list(
        generate_records(
            GeneratorConfig(events=8000, seed=11, start_time=START, malformed_rate=0.5)
        )
    )
    malformed = [r for r in records if r.kind == "malformed"]
    assert len(malformed) > 3500
    for r in malformed:
        reasons = quarantine_reasons(r.data, sent_around=START)
        assert reasons == [r.reason], (r.reason, reasons, r.data[:300])
        size = len(r.data.encode("utf-8"))
        assert size < 1024 * 1024
        if r.reason == "oversize":
            assert size > MAX_EVENT_BYTES
            assert quarantine_reasons(r.data.rstrip()) == []  # nothing else wrong with it
        parsed: Any = None
        with contextlib.suppress(ValueError):
            parsed = json.loads(r.data)
        expected_id = parsed.get("event_id") if isinstance(parsed, dict) else None
        assert r.event_id == (expected_id if isinstance(expected_id, str) else None)
        if isinstance(parsed, dict) and r.reason != "extra_field":
            assert set(parsed) <= set(EVENT_FIELD_NAMES)


def test_outage_collapses_signal_in_its_postal_codes_and_window() -> None:
    codes = [a.code for a in postal_areas()]
    outage = parse_outage(f"{codes[14]},{codes[15]}@+60s/+180s", origin=START)
    records = generate_records(
        GeneratorConfig(events=20_000, seed=9, start_time=START, rate=50.0, outages=(outage,))
    )
    df = pd.DataFrame([json.loads(r.data) for r in records])
    df["t"] = pd.to_datetime(df["event_time"], format="ISO8601")
    in_window = (df["t"] >= pd.Timestamp(outage.start)) & (df["t"] < pd.Timestamp(outage.end))
    inside = df[in_window & df["postal_code"].isin([codes[14], codes[15]])]
    outside = df[~in_window & df["postal_code"].isin([codes[14], codes[15]])]
    assert len(inside) > 50
    assert inside["status"].isin(["OUT_OF_SERVICE", "EMERGENCY_ONLY"]).all()
    assert (inside["signal_dbm"] <= -121).all()
    assert (inside["status"] == "OUT_OF_SERVICE").mean() > 0.7
    assert (outside["status"] == "IN_SERVICE").mean() > 0.9


def test_scenario_specs_parse_and_reject_nonsense() -> None:
    outage = parse_outage("47001, 47002@2026-03-01T12:00:00Z/+2h", origin=START)
    assert outage.postal_codes == {"47001", "47002"}
    assert outage.end - outage.start == dt.timedelta(hours=2)
    assert parse_late_delay("exp:30") == LateDelay("exp", 30.0)
    assert parse_late_delay("uniform:3600:7200") == LateDelay("uniform", 3600.0, 7200.0)
    for bad in ("47001", "47001@+2m/+1m", "@+1m/+2m", "47001@soon/+1m"):
        with pytest.raises(ScenarioError):
            parse_outage(bad, origin=START)
    for bad in ("exp", "uniform:5:1", "gamma:1", "exp:x"):
        with pytest.raises(ScenarioError):
            parse_late_delay(bad)
    with pytest.raises(ValueError, match="malformed_rate"):
        GeneratorConfig(events=1, malformed_rate=1.5)
