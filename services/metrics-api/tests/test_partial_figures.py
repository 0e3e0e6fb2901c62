"""Issue 24's figures from the partials' new columns, each against an oracle over the raw events:
signal percentiles (nearest rank, exact), the normal interval of averages (1e-9), distinct
devices (within the sketch's stated bound) and `min_devices` suppression; and what a range
that includes partials written before those columns answers (unknown, never zero)."""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from signal_api.adapters.duckdb_engine import DuckDBEngine
from signal_api.app import create_app
from signal_api.core import service
from signal_api.core.params import percentile_key
from signal_api.settings import ApiSettings
from signal_common.partials import SIGNAL_HIST_BINS, histogram_percentile
from signal_testing.fixture_lake import kpi_partials, write_kpi_partials, write_table

SECONDS = {"5m": 300, "1h": 3600, "1d": 86400}
ASKED = ("2.5", "10", "50", "90", "100")
Z = 1.959963984540054  # Φ⁻¹(0.975), written out
MIN_EVENTS = 20  # the defaults, written out
MIN_DEVICES = 5
HLL_95 = 2 * 1.04 / math.sqrt(2**12)  # DataSketches HLL, lg_k 12: the bound the API states
Iso = Callable[[dt.datetime], str]


def nearest_rank(values: pd.Series, p: str) -> int:
    """The nearest-rank p-th percentile: the value at rank ceil(p/100 · n) of the sorted values,
    with the rank computed in exact fractions."""
    ordered = np.sort(values.to_numpy())
    rank = max(1, math.ceil(Fraction(p) * len(ordered) / 100))
    return int(ordered[rank - 1])


def normal_interval(values: pd.Series) -> tuple[float, float]:
    """mean ± z · s / √n with numpy's sample standard deviation (ddof=1)."""
    x = values.to_numpy(dtype=float)
    half = Z * float(np.std(x, ddof=1)) / math.sqrt(len(x))
    return float(x.mean()) - half, float(x.mean()) + half


def exact_devices(frame: pd.DataFrame) -> int:
    return int(frame["device_id"].dropna().nunique())


def _bucket(events: pd.DataFrame, granularity: str) -> pd.Series:
    epoch = (events["event_time"] - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)
    size = SECONDS[granularity]
    return pd.to_datetime(epoch // size * size, unit="s", utc=True)


def _in_range(events: pd.DataFrame, start: dt.datetime, end: dt.datetime) -> pd.DataFrame:
    minute = events["event_time"].dt.floor("min")
    return events[(minute >= pd.Timestamp(start)) & (minute < pd.Timestamp(end))]


def _get(client: TestClient, path: str, **params: Any) -> dict[str, Any]:
    response = client.get(path, params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _assert_devices(row: dict[str, Any], frame: pd.DataFrame) -> None:
    """The row's devices within the stated ±3.25 % of the exact distinct count (and the exact
    count inside the row's own bounds)."""
    exact = exact_devices(frame)
    assert abs(row["devices"] - exact) <= max(1.0, HLL_95 * exact), (row["devices"], exact)
    assert row["devices_ci_low"] <= exact <= row["devices_ci_high"]


@pytest.mark.parametrize("granularity", list(SECONDS))
def test_signal_strength_percentiles_intervals_and_devices_match_the_raw_events(
    client: TestClient, events: pd.DataFrame, span: Any, iso: Iso, granularity: str
) -> None:
    start, end = span[0] - dt.timedelta(hours=1), span[1] + dt.timedelta(hours=1)
    body = _get(
        client,
        "/v1/kpis/signal-strength",
        granularity=granularity,
        percentiles=",".join(ASKED),
        **{"from": iso(start)},
        to=iso(end),
    )
    ev = events.assign(bucket=_bucket(events, granularity))
    groups = dict(list(ev.groupby(["bucket", "operator", "network_type"])))
    assert len(body["rows"]) == len(groups) > 0
    late = 0  # served rows whose events came in more than one micro-batch
    for row in body["rows"]:
        key = (pd.Timestamp(row["bucket_start"]), row["operator"], row["network_type"])
        frame = groups[key]
        assert row["events"] == len(frame)
        _assert_devices(row, frame)
        if row["suppressed"]:
            assert row["suppressed"] == "min_events"
            assert len(frame) < MIN_EVENTS
            assert row["signal_percentiles"] is None
            assert (row["avg_signal_dbm_ci_low"], row["avg_signal_dbm_ci_high"]) == (None, None)
            continue
        late += frame["batch_id"].nunique() > 1
        assert row["signal_percentiles"] == {
            f"p{p}": nearest_rank(frame["signal_dbm"], p) for p in ASKED
        }
        low, high = normal_interval(frame["signal_dbm"])
        assert row["avg_signal_dbm_ci_low"] == pytest.approx(low, abs=1e-9)
        assert row["avg_signal_dbm_ci_high"] == pytest.approx(high, abs=1e-9)
    assert late > 0  # the oracle covers windows folded from several batches' partials


@pytest.mark.parametrize("seed", range(4))
def test_the_served_rule_is_partials_histogram_percentile(seed: int) -> None:
    """The API's one-cumsum percentiles agree with libs/common's histogram_percentile on random
    histograms of several partial rows (sparse and dense, ranks landing on whole numbers)."""
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, 3, (3, SIGNAL_HIST_BINS)) * (rng.random((3, SIGNAL_HIST_BINS)) < 0.2)
    rows[0, 5] += 1  # never empty
    text = ",".join(" ".join(map(str, row)) for row in rows)
    asked = (0.5, 1, 2.5, 10, 25, 33.333, 50, 75, 90, 99.9, 100)
    merged = rows.sum(axis=0)
    assert service._percentiles(text, asked) == {
        percentile_key(p): histogram_percentile(merged, p) for p in asked
    }


def test_the_column_wise_percentiles_are_the_per_row_ones() -> None:
    """`_percentile_texts` (a whole answer at once, in chunks) writes each row's `_percentiles` as
    json.dumps would: rows of one to four partial histograms, empty ones, unknown ones, and more
    rows than one chunk."""
    rng = np.random.default_rng(5)
    column: list[str | None] = []
    for i in range(service._PERCENTILE_CHUNK + 300):
        if i % 97 == 0:
            column.append(None)  # a merged row with a partial written before the histograms
            continue
        parts = rng.integers(0, 4, (int(rng.integers(1, 5)), SIGNAL_HIST_BINS))
        parts *= rng.random(parts.shape) < (0.0 if i % 89 == 0 else 0.1)  # some all zero
        column.append(",".join(" ".join(map(str, row)) for row in parts))
    asked = (5, 10, 33.333, 50, 90, 99.9, 100)
    expected = [
        json.dumps(service._percentiles(text, asked), separators=(",", ":")) for text in column
    ]
    assert service._percentile_texts(column, asked) == expected
    assert service._percentile_texts(column, ()) == ["null"] * len(column)
    assert '"p10":null' in expected[89]  # an empty histogram's percentiles are unknown


def test_signal_strength_without_percentiles_serves_none(
    client: TestClient, span: Any, iso: Iso
) -> None:
    body = _get(
        client,
        "/v1/kpis/signal-strength",
        granularity="1d",
        **{"from": iso(span[0])},
        to=iso(span[1]),
    )
    assert body["rows"]
    assert {r["signal_percentiles"] is None for r in body["rows"]} == {True}
    assert {r["avg_signal_dbm_ci_low"] is None for r in body["rows"]} == {False}


def test_operator_rollup_percentiles(
    client: TestClient, events: pd.DataFrame, span: Any, iso: Iso
) -> None:
    body = _get(
        client,
        "/v1/kpis/signal-strength",
        granularity="1h",
        by_network_type="false",
        percentiles="50",
        **{"from": iso(span[0] - dt.timedelta(hours=1))},
        to=iso(span[1]),
    )
    ev = events.assign(bucket=_bucket(events, "1h"))
    groups = dict(list(ev.groupby(["bucket", "operator"])))
    assert len(body["rows"]) == len(groups)
    for row in body["rows"]:
        frame = groups[(pd.Timestamp(row["bucket_start"]), row["operator"])]
        assert row["signal_percentiles"] == {"p50": nearest_rank(frame["signal_dbm"], "50")}
        _assert_devices(row, frame)


def test_coverage_percentiles_intervals_and_devices(
    client: TestClient, events: pd.DataFrame, span: Any, iso: Iso
) -> None:
    start = span[0] + dt.timedelta(minutes=30)
    end = span[1] - dt.timedelta(minutes=45)
    body = _get(client, "/v1/coverage", percentiles="10,50,90", **{"from": iso(start)}, to=iso(end))
    ev = _in_range(events, start, end)
    groups = dict(list(ev.groupby("postal_code")))
    assert [r["postal_code"] for r in body["rows"]] == sorted(groups)
    for row in body["rows"]:
        frame = groups[row["postal_code"]]
        assert row["suppressed"] is None
        assert row["events"] == len(frame)
        assert row["signal_percentiles"] == {
            f"p{p}": nearest_rank(frame["signal_dbm"], p) for p in ("10", "50", "90")
        }
        low, high = normal_interval(frame["signal_dbm"])
        assert row["avg_signal_dbm_ci_low"] == pytest.approx(low, abs=1e-9)
        assert row["avg_signal_dbm_ci_high"] == pytest.approx(high, abs=1e-9)
        _assert_devices(row, frame)
        assert row["devices"] > 200  # past exact coupon mode: the estimate is a real estimate


def test_gps_precision_interval_and_devices(
    client: TestClient, events: pd.DataFrame, span: Any, iso: Iso
) -> None:
    body = _get(
        client,
        "/v1/kpis/gps-precision",
        granularity="1h",
        **{"from": iso(span[0])},
        to=iso(span[1]),
    )
    ev = events.assign(bucket=_bucket(events, "1h"))
    groups = dict(list(ev.groupby(["bucket", "provider"])))
    assert len(body["rows"]) == len(groups) > 0
    for row in body["rows"]:
        frame = groups[(pd.Timestamp(row["bucket_start"]), row["provider"])]
        assert row["suppressed"] is None
        low, high = normal_interval(frame["gps_precision_m"])
        assert row["avg_precision_m_ci_low"] == pytest.approx(low, abs=1e-9)
        assert row["avg_precision_m_ci_high"] == pytest.approx(high, abs=1e-9)
        _assert_devices(row, frame)


def test_status_counts_and_signal_quality_carry_devices(
    client: TestClient, events: pd.DataFrame, span: Any, iso: Iso
) -> None:
    params = {"from": iso(span[0]), "to": iso(span[1])}
    counts = _get(client, "/v1/kpis/status-counts", granularity="1h", **params)
    ev = _in_range(events, *span)
    groups = dict(
        list(ev.assign(bucket=_bucket(ev, "1h")).groupby(["bucket", "postal_code", "status"]))
    )
    assert len(counts["rows"]) == len(groups)
    for row in counts["rows"]:
        _assert_devices(
            row, groups[(pd.Timestamp(row["bucket_start"]), row["postal_code"], row["status"])]
        )
    quality = _get(client, "/v1/kpis/signal-quality", **params)
    by_network = dict(list(ev.groupby(["operator", "network_type"])))
    for row in quality["rows"]:
        _assert_devices(row, by_network[(row["operator"], row["network_type"])])


def test_summary_interval(client: TestClient, events: pd.DataFrame, span: Any, iso: Iso) -> None:
    at = span[1] + dt.timedelta(seconds=90)
    body = _get(client, "/v1/summary", at=iso(at))
    window = events[events["event_time"].dt.floor("min") == pd.Timestamp(body["window_start"])]
    assert body["suppressed"] is None
    assert body["events"] == len(window)
    low, high = normal_interval(window["signal_dbm"])
    assert body["avg_signal_dbm_ci_low"] == pytest.approx(low, abs=1e-9)
    assert body["avg_signal_dbm_ci_high"] == pytest.approx(high, abs=1e-9)


@pytest.mark.parametrize(
    ("value", "bad"),
    [("0", "0"), ("101", "101"), ("10,abc", "abc"), ("50,,90", ""), ("-5", "-5"),
     ("1e2", "1e2"), ("nan", "nan"), ("0000", "0000"), ("010", "010"), ("0.0", "0.0"),
     ("10, 50", " 50"), ("12.3456", "12.3456")],
)  # fmt: skip
def test_a_bad_percentile_is_a_422_naming_it(client: TestClient, value: str, bad: str) -> None:
    for path in ("/v1/kpis/signal-strength", "/v1/coverage"):
        response = client.get(path, params={"percentiles": value})
        assert response.status_code == 422, response.text
        error = response.json()["error"]
        assert error["parameter"] == "percentiles"
        assert repr(bad) in error["message"]


def test_more_than_seven_percentiles_is_a_422(client: TestClient) -> None:
    response = client.get("/v1/coverage", params={"percentiles": "5,10,25,50,75,90,95,99"})
    assert response.status_code == 422
    assert response.json()["error"]["parameter"] == "percentiles"
    assert "at most 7" in response.json()["error"]["message"]


# --- lakes of their own: few devices; partials written before the new columns ----------------


@pytest.fixture(scope="module")
def hour(events: pd.DataFrame, span: Any) -> tuple[dt.datetime, dt.datetime, pd.DataFrame]:
    """One hour of the fixture's events where postal code 1000's come from three phones."""
    start = span[0] + dt.timedelta(minutes=30)
    end = start + dt.timedelta(hours=1)
    ev = _in_range(events, start, end).copy()
    few = ev["postal_code"] == "1000"
    ev.loc[few, "device_id"] = [f"phone-{i % 3}" for i in range(int(few.sum()))]
    return start, end, ev


@contextmanager
def _serve(root: Path, **settings: Any) -> Iterator[TestClient]:
    """The API over the lake at `root` (its own engine), with settings from the environment."""
    engine = DuckDBEngine(root.as_uri(), threads=1)
    values: dict[str, Any] = {
        "lake_root": root.as_uri(), "auth_enabled": False, "cache_ttl_s": 0, **settings,
    }  # fmt: skip
    try:
        with TestClient(create_app(ApiSettings(**values), engine)) as client:
            yield client
    finally:
        engine.close()


@pytest.fixture(scope="module")
def few_devices(tmp_path_factory: pytest.TempPathFactory, hour: Any) -> Iterator[TestClient]:
    root = tmp_path_factory.mktemp("few-devices")
    write_kpi_partials(root, hour[2])
    with _serve(root) as client:
        yield client


def test_many_events_from_too_few_devices_are_withheld_as_min_devices(
    few_devices: TestClient, hour: Any, iso: Iso
) -> None:
    start, end, ev = hour
    body = _get(few_devices, "/v1/coverage", percentiles="50", **{"from": iso(start)}, to=iso(end))
    rows = {r["postal_code"]: r for r in body["rows"]}
    withheld = rows.pop("1000")
    assert withheld["events"] == int((ev["postal_code"] == "1000").sum()) >= 10 * MIN_EVENTS
    assert withheld["devices"] == 3 < MIN_DEVICES
    assert withheld["suppressed"] == "min_devices"
    assert [withheld[k] for k in ("latitude", "avg_signal_dbm", "signal_percentiles")] == [None] * 3
    assert withheld["out_of_service_share"] is None
    for code, row in rows.items():  # the others: many devices, served
        assert row["suppressed"] is None, code
        assert row["devices"] == exact_devices(ev[ev["postal_code"] == code]) >= MIN_DEVICES


def test_min_devices_comes_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, hour: Any, iso: Iso
) -> None:
    start, end, ev = hour
    write_kpi_partials(tmp_path, ev)
    monkeypatch.setenv("SIGNAL_API_MIN_DEVICES", "3")
    with _serve(tmp_path) as client:
        row = next(
            r
            for r in _get(client, "/v1/coverage", **{"from": iso(start)}, to=iso(end))["rows"]
            if r["postal_code"] == "1000"
        )
        assert (row["devices"], row["suppressed"]) == (3, None)
        assert row["avg_signal_dbm"] is not None
        # the answer publishes the thresholds it applied, so a reader can say why a row is withheld
        meta = _get(client, "/v1/coverage", **{"from": iso(start)}, to=iso(end))["meta"]
        assert (meta["min_events"], meta["min_devices"]) == (MIN_EVENTS, 3)


@pytest.fixture(scope="module")
def older_files(tmp_path_factory: pytest.TempPathFactory, hour: Any) -> Iterator[TestClient]:
    """The hour's first half written as today's partials, its second half as partials written
    before #24's columns (null: signal_hist, signal_sq_sum, precision_sq_sum, devices_hll)."""
    start, _, ev = hour
    root = tmp_path_factory.mktemp("older-files")
    middle = pd.Timestamp(start + dt.timedelta(minutes=30))
    write_kpi_partials(root, ev[ev["event_time"] < middle])
    for table, frame in kpi_partials(ev[ev["event_time"] >= middle]).items():
        for column in ("signal_hist", "signal_sq_sum", "precision_sq_sum", "devices_hll"):
            if column in frame.columns:
                frame[column] = None
        write_table(root, table, frame, "window_start", tag="old")
    with _serve(root) as client:
        yield client


def test_a_range_with_older_files_answers_unknown_for_the_new_figures(
    older_files: TestClient, hour: Any, iso: Iso
) -> None:
    start, end, ev = hour
    middle = start + dt.timedelta(minutes=30)
    mixed = _get(older_files, "/v1/coverage", percentiles="50", **{"from": iso(start)}, to=iso(end))
    for row in mixed["rows"]:
        frame = ev[ev["postal_code"] == row["postal_code"]]
        # counts, sums and shares stay exact; devices unknown, so min_devices cannot withhold
        assert row["events"] == len(frame)
        assert row["suppressed"] is None
        assert row["avg_signal_dbm"] == pytest.approx(frame["signal_dbm"].mean(), abs=1e-9)
        assert (row["devices"], row["devices_ci_low"], row["devices_ci_high"]) == (None,) * 3
        assert row["signal_percentiles"] is None
        assert (row["avg_signal_dbm_ci_low"], row["avg_signal_dbm_ci_high"]) == (None, None)
    gps = _get(
        older_files,
        "/v1/kpis/gps-precision",
        granularity="1d",
        **{"from": iso(start)},
        to=iso(end),
    )
    assert gps["rows"]
    assert {r["avg_precision_m_ci_low"] for r in gps["rows"]} == {None}
    assert {r["avg_precision_m"] is None for r in gps["rows"]} == {False}
    # the first half alone holds no older file: every figure is back
    recent = _get(
        older_files, "/v1/coverage", percentiles="50", **{"from": iso(start)}, to=iso(middle)
    )
    for row in recent["rows"]:
        frame = _in_range(ev, start, middle)
        frame = frame[frame["postal_code"] == row["postal_code"]]
        assert row["devices"] == exact_devices(frame)
        if row["postal_code"] == "1000":  # the three phones' code: known devices, too few
            assert row["suppressed"] == "min_devices"
            continue
        assert row["signal_percentiles"] == {"p50": nearest_rank(frame["signal_dbm"], "50")}
        low, high = normal_interval(frame["signal_dbm"])
        assert row["avg_signal_dbm_ci_low"] == pytest.approx(low, abs=1e-9)
        assert row["avg_signal_dbm_ci_high"] == pytest.approx(high, abs=1e-9)
