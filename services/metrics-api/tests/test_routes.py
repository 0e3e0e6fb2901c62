"""Route tests: every number equals a pandas oracle computed straight from the raw events."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from signal_api.adapters.duckdb_engine import DuckDBEngine
from signal_api.app import create_app
from signal_api.core.models import (
    CoverageResponse,
    GpsPrecisionResponse,
    PipelineResponse,
    SignalQualityResponse,
    SignalStrengthResponse,
    StatusCountsResponse,
    SummaryResponse,
)
from signal_api.settings import ApiSettings

SECONDS = {"1m": 60, "5m": 300, "15m": 900, "1h": 3600, "1d": 86400}
Iso = Callable[[dt.datetime], str]
Oracle = Callable[[int, int], tuple[float, float]]
MIN_EVENTS = 20  # the default, written out: a figure over fewer events is withheld (#24)


def _in_range(events: pd.DataFrame, start: dt.datetime, end: dt.datetime) -> pd.DataFrame:
    """Events whose 1-minute window starts in [start, end)."""
    minute = events["event_time"].dt.floor("min")
    return events[(minute >= pd.Timestamp(start)) & (minute < pd.Timestamp(end))]


def _bucket(events: pd.DataFrame, granularity: str) -> pd.Series:
    epoch = (events["event_time"] - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)
    size = SECONDS[granularity]
    return pd.to_datetime(epoch // size * size, unit="s", utc=True)


def _ts(value: str) -> pd.Timestamp:
    return pd.Timestamp(value)


MODELS = {
    "/v1/kpis/signal-strength": SignalStrengthResponse,
    "/v1/kpis/gps-precision": GpsPrecisionResponse,
    "/v1/kpis/status-counts": StatusCountsResponse,
    "/v1/kpis/signal-quality": SignalQualityResponse,
    "/v1/coverage": CoverageResponse,
    "/v1/summary": SummaryResponse,
    "/v1/pipeline": PipelineResponse,
}


def _get(client: TestClient, path: str, **params: Any) -> dict[str, Any]:
    """GET a route; its body must validate against the route's documented model."""
    response = client.get(path, params=params)
    assert response.status_code == 200, response.text
    body = response.json()
    model = MODELS[path].model_validate(
        {("from_" if k == "from" else k): v for k, v in body.items()}
    )
    assert model.meta.stale is False
    return body


def _window(span: tuple[dt.datetime, dt.datetime], granularity: str) -> tuple[dt.datetime, ...]:
    start, end = span
    if granularity == "1m":  # a slice across midnight, starting mid-minute
        return (dt.datetime(2026, 11, 22, 23, 40, 30, tzinfo=dt.UTC), start + dt.timedelta(hours=2))
    return start - dt.timedelta(hours=1), end + dt.timedelta(hours=1)


@pytest.mark.parametrize("granularity", list(SECONDS))
def test_signal_strength_matches_oracle(
    client: TestClient, events: pd.DataFrame, span: Any, iso: Iso, granularity: str
) -> None:
    start, end = _window(span, granularity)
    body = _get(
        client,
        "/v1/kpis/signal-strength",
        granularity=granularity,
        **{"from": iso(start)},
        to=iso(end),
    )
    ev = _in_range(events, start, end)
    oracle = (
        ev.assign(bucket=_bucket(ev, granularity))
        .groupby(["bucket", "operator", "network_type"])["signal_dbm"]
        .agg(["count", "mean", "min", "max"])
        .reset_index()
    )
    assert len(body["rows"]) == len(oracle) > 0
    got = sorted(body["rows"], key=lambda r: (r["bucket_start"], r["operator"], r["network_type"]))
    for row, (_, exp) in zip(got, oracle.iterrows(), strict=True):
        assert _ts(row["bucket_start"]) == exp["bucket"]
        assert (row["operator"], row["network_type"]) == (exp["operator"], exp["network_type"])
        assert row["event_count"] == row["events"] == exp["count"]
        values = (row["avg_signal_dbm"], row["min_signal_dbm"], row["max_signal_dbm"])
        if exp["count"] < MIN_EVENTS:
            assert row["suppressed"] == "min_events"
            assert values == (None, None, None)
            continue
        assert row["suppressed"] is None
        assert row["avg_signal_dbm"] == pytest.approx(exp["mean"], abs=1e-9)
        assert (row["min_signal_dbm"], row["max_signal_dbm"]) == (exp["min"], exp["max"])
    assert body["granularity"] == granularity
    # the fixture's rows hold ~3 events per minute: all withheld at 1m, some at 5m, none at 1d
    served = {row["suppressed"] is None for row in body["rows"]}
    assert served == {"1m": {False}, "5m": {False, True}, "1d": {True}}.get(granularity, served)


def test_signal_strength_filters_and_operator_rollup(
    client: TestClient, events: pd.DataFrame, span: Any, iso: Iso
) -> None:
    start, end = span
    body = client.get(
        "/v1/kpis/signal-strength",
        params=[
            ("from", iso(start)),
            ("to", iso(end)),
            ("granularity", "15m"),
            ("operator", "Base O'Neil"),
            ("operator", "Orange"),
            ("network_type", "4G"),
            ("network_type", "5G"),
            ("by_network_type", "false"),
        ],
    ).json()
    SignalStrengthResponse.model_validate({**body, "from_": body["from"]})
    ev = events[
        events["operator"].isin(["Base O'Neil", "Orange"])
        & events["network_type"].isin(["4G", "5G"])
    ]
    oracle = (
        ev.assign(bucket=_bucket(ev, "15m"))
        .groupby(["bucket", "operator"])["signal_dbm"]
        .agg(["count", "sum", "min", "max"])
        .reset_index()
    )
    assert len(body["rows"]) == len(oracle)
    for row, (_, exp) in zip(body["rows"], oracle.iterrows(), strict=True):
        assert row["network_type"] is None
        assert (_ts(row["bucket_start"]), row["operator"]) == (exp["bucket"], exp["operator"])
        assert row["event_count"] == exp["count"] >= MIN_EVENTS
        assert row["suppressed"] is None
        assert row["avg_signal_dbm"] == pytest.approx(exp["sum"] / exp["count"], abs=1e-9)
        assert (row["min_signal_dbm"], row["max_signal_dbm"]) == (exp["min"], exp["max"])


@pytest.mark.parametrize("granularity", ["1m", "5m", "1h"])
def test_gps_precision_matches_oracle(
    client: TestClient, events: pd.DataFrame, span: Any, iso: Iso, granularity: str
) -> None:
    start, end = span
    body = client.get(
        "/v1/kpis/gps-precision",
        params=[
            ("from", iso(start)),
            ("to", iso(end)),
            ("granularity", granularity),
            ("provider", "gps"),
            ("provider", "fused"),
        ],
    ).json()
    ev = events[events["provider"].isin(["gps", "fused"])]
    ev = ev.assign(bucket=_bucket(ev, granularity))
    oracle = (
        ev.groupby(["bucket", "provider"])
        .agg(
            count=("gps_precision_m", "size"),
            mean=("gps_precision_m", "mean"),
            min=("gps_precision_m", "min"),
            max=("gps_precision_m", "max"),
            sats=("satellites", "mean"),  # pandas skips missing satellites
        )
        .reset_index()
    )
    assert len(body["rows"]) == len(oracle) > 0
    suppressed = 0
    for row, (_, exp) in zip(body["rows"], oracle.iterrows(), strict=True):
        assert (_ts(row["bucket_start"]), row["provider"]) == (exp["bucket"], exp["provider"])
        assert row["event_count"] == row["events"] == exp["count"]
        if exp["count"] < MIN_EVENTS:
            suppressed += 1
            assert row["suppressed"] == "min_events"
            assert [row[k] for k in row if "precision" in k or "satellites" in k] == [None] * 6
            continue
        assert row["suppressed"] is None
        assert row["avg_precision_m"] == pytest.approx(exp["mean"], abs=1e-9)
        assert (row["min_precision_m"], row["max_precision_m"]) == (exp["min"], exp["max"])
        assert row["avg_satellites"] == pytest.approx(exp["sats"], abs=1e-9)
    # per provider ~11 events a minute, ~55 in five: some 1-minute rows are served
    assert (0 < suppressed < len(oracle)) if granularity == "1m" else suppressed == 0


def test_status_counts_with_filters(
    client: TestClient, events: pd.DataFrame, span: Any, iso: Iso
) -> None:
    start, end = span
    body = client.get(
        "/v1/kpis/status-counts",
        params=[
            ("from", iso(start)),
            ("to", iso(end)),
            ("granularity", "1h"),
            ("postal_code", "1000"),
            ("postal_code", "9000"),
            ("status", "OUT_OF_SERVICE"),
            ("status", "IN_SERVICE"),
        ],
    ).json()
    ev = events[
        events["postal_code"].isin(["1000", "9000"])
        & events["status"].isin(["OUT_OF_SERVICE", "IN_SERVICE"])
    ]
    oracle = ev.assign(bucket=_bucket(ev, "1h")).groupby(["bucket", "postal_code", "status"]).size()
    got = {
        (_ts(r["bucket_start"]), r["postal_code"], r["status"]): r["event_count"]
        for r in body["rows"]
    }
    assert got == {k: int(v) for k, v in oracle.items()}


@pytest.mark.parametrize("top", [1, 2, 4])
def test_status_counts_top_postal_codes(
    client: TestClient, events: pd.DataFrame, span: Any, iso: Iso, top: int
) -> None:
    start, end = span
    body = _get(
        client,
        "/v1/kpis/status-counts",
        granularity="1d",
        top=top,
        **{"from": iso(start)},
        to=iso(end),
    )
    oos = (
        events.assign(oos=events["status"] == "OUT_OF_SERVICE")
        .groupby("postal_code")["oos"]
        .sum()
        .reset_index()
        .sort_values(["oos", "postal_code"], ascending=[False, True])
    )
    keep = set(oos["postal_code"].head(top))
    ev = events[events["postal_code"].isin(keep)]
    oracle = ev.assign(bucket=_bucket(ev, "1d")).groupby(["bucket", "postal_code", "status"]).size()
    got = {
        (_ts(r["bucket_start"]), r["postal_code"], r["status"]): r["event_count"]
        for r in body["rows"]
    }
    assert got == {k: int(v) for k, v in oracle.items()}
    assert {r["postal_code"] for r in body["rows"]} == keep


def test_signal_quality_shares(
    client: TestClient, events: pd.DataFrame, span: Any, iso: Iso, wilson_oracle: Oracle
) -> None:
    start, end = span
    body = _get(client, "/v1/kpis/signal-quality", **{"from": iso(start)}, to=iso(end))
    counts = events.groupby(["operator", "network_type", "band"]).size()
    totals = events.groupby(["operator", "network_type"]).size()
    assert len(body["rows"]) == len(totals)
    for row in body["rows"]:
        key = (row["operator"], row["network_type"])
        assert row["event_count"] == row["events"] == totals[key] >= MIN_EVENTS
        assert row["suppressed"] is None
        for band in ("excellent", "good", "fair", "poor"):
            expected = int(counts.get((*key, band), 0))
            assert row["band_counts"][band] == expected
            assert row["band_shares"][band] == pytest.approx(expected / totals[key], abs=1e-12)
            low, high = wilson_oracle(expected, int(totals[key]))
            assert row["band_shares_ci_low"][band] == pytest.approx(low, abs=1e-9)
            assert row["band_shares_ci_high"][band] == pytest.approx(high, abs=1e-9)


def test_coverage_centroids(
    client: TestClient, events: pd.DataFrame, span: Any, iso: Iso, wilson_oracle: Oracle
) -> None:
    start = span[0] + dt.timedelta(minutes=30)
    end = span[1] - dt.timedelta(minutes=45)
    body = client.get(
        "/v1/coverage",
        params=[
            ("from", iso(start)),
            ("to", iso(end)),
            ("postal_code", "1000"),
            ("postal_code", "2000"),
            ("postal_code", "9000"),
        ],
    ).json()
    ev = _in_range(events, start, end)
    ev = ev[ev["postal_code"].isin(["1000", "2000", "9000"])]
    oracle = ev.groupby("postal_code").agg(
        count=("latitude", "size"),
        lat=("latitude", "mean"),
        lon=("longitude", "mean"),
        signal=("signal_dbm", "mean"),
        oos=("status", lambda s: (s == "OUT_OF_SERVICE").mean()),
        oos_count=("status", lambda s: int((s == "OUT_OF_SERVICE").sum())),
    )
    assert [r["postal_code"] for r in body["rows"]] == list(oracle.index)
    for row in body["rows"]:
        exp = oracle.loc[row["postal_code"]]
        assert row["event_count"] == row["events"] == exp["count"] >= MIN_EVENTS
        assert row["suppressed"] is None
        low, high = wilson_oracle(int(exp["oos_count"]), int(exp["count"]))
        assert row["out_of_service_share_ci_low"] == pytest.approx(low, abs=1e-9)
        assert row["out_of_service_share_ci_high"] == pytest.approx(high, abs=1e-9)
        assert row["latitude"] == pytest.approx(exp["lat"], abs=1e-9)
        assert row["longitude"] == pytest.approx(exp["lon"], abs=1e-9)
        assert row["avg_signal_dbm"] == pytest.approx(exp["signal"], abs=1e-9)
        assert row["out_of_service_share"] == pytest.approx(exp["oos"], abs=1e-12)


def test_empty_range_has_no_rows(client: TestClient, iso: Iso) -> None:
    start = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    body = _get(
        client,
        "/v1/kpis/signal-strength",
        **{"from": iso(start)},
        to=iso(start + dt.timedelta(hours=1)),
    )
    assert body["rows"] == []


def test_pipeline_matches_batches(
    client: TestClient, batches: pd.DataFrame, span: Any, iso: Iso
) -> None:
    start, end = span
    mid = start + dt.timedelta(hours=1, minutes=10)
    body = _get(client, "/v1/pipeline", **{"from": iso(mid)}, to=iso(end))
    sel = batches[batches["batch_time"] >= pd.Timestamp(mid)]
    assert body["batches"] == len(sel)
    summed = ("rows_in", "valid_rows", "quarantined_rows", "duplicates_removed", "late_dropped")
    for column in summed:
        assert body[column] == sel[column].sum()
    assert body["late_dropped"] > 0  # the fixture's late rows fall in this range
    newest = sel.loc[sel["batch_time"].idxmax()]
    assert body["millis_behind_latest"] == newest["millis_behind_latest"]
    assert body["max_millis_behind_latest"] == sel["millis_behind_latest"].max()
    reasons: dict[str, int] = {}
    for pairs in sel["quarantined_by_reason"]:
        for reason, n in pairs:
            key = reason if reason in ("invalid_json", "missing") else "other"
            reasons[key] = reasons.get(key, 0) + n
    assert {k: v for k, v in body["quarantined_by_reason"].items() if v} == reasons
    assert body["quarantine_rate"] == pytest.approx(
        sel["quarantined_rows"].sum() / sel["rows_in"].sum(), abs=1e-12
    )
    assert body["quarantine_rate_by_reason"]["missing"] == pytest.approx(
        reasons["missing"] / sel["rows_in"].sum(), abs=1e-12
    )
    assert body["events_per_s"] == pytest.approx(
        sel["valid_rows"].sum() / (end - mid).total_seconds(), abs=1e-12
    )
    assert _ts(body["newest_batch_time"]) == sel["batch_time"].max()
    assert _ts(body["newest_event_time"]) == sel["max_event_time"].max()
    assert body["max_lateness_s"] == pytest.approx(sel["max_lateness_s"].max(), abs=1e-9)
    assert body["avg_processing_ms"] == pytest.approx(sel["processing_ms"].mean(), abs=1e-9)


def test_summary_latest_complete_window(
    client: TestClient, events: pd.DataFrame, span: Any, iso: Iso, wilson_oracle: Oracle
) -> None:
    # 90 s after the last minute of data ends, that minute is not complete yet (needs 60 s).
    end = span[1]
    at = end + dt.timedelta(seconds=90)
    body = _get(client, "/v1/summary", at=iso(at))
    minute = events["event_time"].dt.floor("min")
    complete = events[minute + pd.Timedelta(minutes=1) + pd.Timedelta(seconds=60) <= at]
    latest = complete["event_time"].dt.floor("min").max()
    in_window = events[minute == latest]
    assert _ts(body["window_start"]) == latest
    assert body["events_per_min"] == body["events"] == len(in_window) >= MIN_EVENTS
    assert body["suppressed"] is None
    low, high = wilson_oracle(int((in_window["status"] == "OUT_OF_SERVICE").sum()), len(in_window))
    assert body["out_of_service_share_ci_low"] == pytest.approx(low, abs=1e-9)
    assert body["out_of_service_share_ci_high"] == pytest.approx(high, abs=1e-9)
    assert body["avg_signal_dbm"] == pytest.approx(in_window["signal_dbm"].mean(), abs=1e-9)
    assert body["out_of_service_share"] == pytest.approx(
        (in_window["status"] == "OUT_OF_SERVICE").mean(), abs=1e-12
    )
    assert body["freshness_s"] == (at - (latest + pd.Timedelta(minutes=1))).total_seconds()


def test_a_short_range_withholds_every_figure_but_keeps_the_counts(
    client: TestClient, events: pd.DataFrame, span: Any, iso: Iso
) -> None:
    start = span[0] + dt.timedelta(minutes=61)
    end = start + dt.timedelta(minutes=2)  # ~13 events per postal code
    body = _get(client, "/v1/coverage", **{"from": iso(start)}, to=iso(end))
    counts = _in_range(events, start, end).groupby("postal_code").size()
    assert {r["postal_code"]: r["events"] for r in body["rows"]} == counts.to_dict()
    assert (counts < MIN_EVENTS).all()
    withheld = (
        "latitude", "longitude", "avg_signal_dbm", "out_of_service_share",
        "out_of_service_share_ci_low", "out_of_service_share_ci_high",
    )  # fmt: skip
    for row in body["rows"]:
        assert row["suppressed"] == "min_events"
        assert row["event_count"] == row["events"]
        assert [row[k] for k in withheld] == [None] * len(withheld)


@pytest.mark.parametrize("min_events", [1, 10_000])
def test_min_events_comes_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
    make_settings: Callable[..., ApiSettings],
    engine: DuckDBEngine,
    events: pd.DataFrame,
    span: Any,
    iso: Iso,
    min_events: int,
) -> None:
    monkeypatch.setenv("SIGNAL_API_MIN_EVENTS", str(min_events))
    # 1-minute rows come from one to three phones: min_devices (#24) is lifted with min_events
    monkeypatch.setenv("SIGNAL_API_MIN_DEVICES", "1")
    settings = make_settings()
    assert settings.min_events == min_events
    start, end = span
    params = {"from": iso(start), "to": iso(end)}
    with TestClient(create_app(settings, engine)) as own:
        strength = _get(own, "/v1/kpis/signal-strength", granularity="1m", **params)
        quality = _get(own, "/v1/kpis/signal-quality", **params)
    rows = strength["rows"] + quality["rows"]
    assert sum(r["events"] for r in strength["rows"]) == len(_in_range(events, start, end))
    if min_events == 1:  # every row served
        # every row served, but one whose events all lack a device id (0 devices < 1)
        assert {r["suppressed"] for r in rows if r["devices"]} == {None}
        assert {r["suppressed"] for r in rows if not r["devices"]} <= {"min_devices"}
        served = [r for r in strength["rows"] if r["suppressed"] is None]
        assert len(served) > 0.9 * len(strength["rows"])
        assert all(r["avg_signal_dbm"] is not None for r in served)
    else:  # every row withheld, its count kept
        assert {r["suppressed"] for r in rows} == {"min_events"}
        assert {r["band_shares"] is None and r["band_counts"] is None for r in quality["rows"]} == {
            True
        }
        totals = events.groupby(["operator", "network_type"]).size()
        assert {(r["operator"], r["network_type"]): r["events"] for r in quality["rows"]} == (
            totals.to_dict()
        )
