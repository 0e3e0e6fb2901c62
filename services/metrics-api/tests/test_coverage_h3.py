"""/v1/coverage/h3 against an oracle over the raw events (#24): each event placed in its H3 cell
by `h3.latlng_to_cell` itself, then events, devices (within the sketch's stated bound), the
average and its normal interval (1e-9), nearest-rank percentiles (exact), the median event's
band, the out-of-service share and its Wilson interval (1e-9), and suppression (min_events,
min_devices) per cell, at both resolutions the lake keeps."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import h3
import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from signal_api.adapters.duckdb_engine import DuckDBEngine
from signal_api.app import create_app
from signal_api.settings import ApiSettings
from signal_common.quality import DEFAULT_BANDS
from signal_testing.fixture_lake import make_events, write_kpi_partials

START = dt.datetime(2026, 11, 24, 6, 0, tzinfo=dt.UTC)
HOURS = 2
Z = 1.959963984540054  # Φ⁻¹(0.975), written out
MIN_EVENTS, MIN_DEVICES = 20, 5  # the defaults, written out
HLL_95 = 2 * 1.04 / math.sqrt(2**12)
# Neighbourhoods (latitude, longitude): events sit within about 150 m of one of them, so a
# resolution-9 cell (about 0.1 km²) holds dozens of events; the last one is two phones only.
CENTRES = [(50.8466, 4.3528), (51.2194, 4.4025), (50.6326, 5.5797), (51.0543, 3.7174)]
TWO_PHONES = (50.4674, 4.8720)
BANDS_WORST_FIRST = ["poor", "fair", "good", "excellent"]


def _events() -> pd.DataFrame:
    events = make_events(6_000, start=START, hours=HOURS, seed=11)
    rng = np.random.default_rng(5)
    n = len(events)
    which = rng.integers(0, len(CENTRES), n)
    centre = np.array(CENTRES)[which]
    events["latitude"] = centre[:, 0] + rng.normal(0, 0.0007, n)
    events["longitude"] = centre[:, 1] + rng.normal(0, 0.001, n)
    phones = rng.random(n) < 0.03  # 3 %: the two phones' neighbourhood
    events.loc[phones, "latitude"] = TWO_PHONES[0] + rng.normal(0, 0.0002, int(phones.sum()))
    events.loc[phones, "longitude"] = TWO_PHONES[1] + rng.normal(0, 0.0003, int(phones.sum()))
    events.loc[phones, "device_id"] = [f"phone-{i % 2}" for i in range(int(phones.sum()))]
    return events


@pytest.fixture(scope="module")
def events() -> pd.DataFrame:
    return _events()


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory, events: pd.DataFrame) -> Iterator[TestClient]:
    root: Path = tmp_path_factory.mktemp("h3-lake")
    write_kpi_partials(root, events)
    engine = DuckDBEngine(root.as_uri(), threads=1)
    settings = ApiSettings(lake_root=root.as_uri(), auth_enabled=False, cache_ttl_s=0)
    try:
        with TestClient(create_app(settings, engine)) as test_client:
            yield test_client
    finally:
        engine.close()


def _iso(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _get(client: TestClient, **params: Any) -> dict[str, Any]:
    response = client.get("/v1/coverage/h3", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def nearest_rank(values: pd.Series, p: str) -> int:
    ordered = np.sort(values.to_numpy())
    return int(ordered[max(1, math.ceil(Fraction(p) * len(ordered) / 100)) - 1])


def wilson(part: int, n: int) -> tuple[float, float]:
    """The Wilson score interval, from its textbook form."""
    p = part / n
    centre = (p + Z**2 / (2 * n)) / (1 + Z**2 / n)
    half = Z * math.sqrt(p * (1 - p) / n + Z**2 / (4 * n**2)) / (1 + Z**2 / n)
    return centre - half, centre + half


def median_band(frame: pd.DataFrame) -> str:
    bands = [
        DEFAULT_BANDS[k].band(int(s))
        for k, s in zip(frame["network_type"], frame["signal_dbm"], strict=True)
    ]
    ordered = sorted(bands, key=BANDS_WORST_FIRST.index)
    return ordered[math.ceil(len(ordered) / 2) - 1]


@pytest.mark.parametrize("res", [7, 9])
def test_every_cell_matches_the_raw_events(
    client: TestClient, events: pd.DataFrame, res: int
) -> None:
    start, end = START + dt.timedelta(minutes=20), START + dt.timedelta(minutes=100)
    body = _get(client, res=res, percentiles="10,90", **{"from": _iso(start)}, to=_iso(end))
    assert body["resolution"] == res
    # hourly partials: the range is served widened to whole hours, and says so
    assert (body["from"], body["to"]) == (_iso(START), _iso(START + dt.timedelta(hours=2)))
    ev = events[(events["event_time"] >= pd.Timestamp(START))
                & (events["event_time"] < pd.Timestamp(START + dt.timedelta(hours=2)))]  # fmt: skip
    cells = [
        h3.latlng_to_cell(a, b, res) for a, b in zip(ev["latitude"], ev["longitude"], strict=True)
    ]
    groups = dict(list(ev.assign(cell=cells).groupby("cell")))
    assert [r["h3_cell"] for r in body["rows"]] == sorted(groups)
    served = withheld = 0
    for row in body["rows"]:
        frame = groups[row["h3_cell"]]
        assert row["h3_resolution"] == res
        assert (row["latitude"], row["longitude"]) == pytest.approx(
            h3.cell_to_latlng(row["h3_cell"])
        )
        assert row["events"] == len(frame)
        exact = int(frame["device_id"].dropna().nunique())
        assert abs(row["devices"] - exact) <= max(1.0, HLL_95 * exact)
        assert row["devices_ci_low"] <= exact <= row["devices_ci_high"]
        if len(frame) < MIN_EVENTS or exact < MIN_DEVICES:
            assert row["suppressed"] == ("min_events" if len(frame) < MIN_EVENTS else "min_devices")
            assert [row[k] for k in ("avg_signal_dbm", "signal_percentiles", "band", "band_counts",
                                     "out_of_service_share")] == [None] * 5  # fmt: skip
            withheld += 1
            continue
        served += 1
        assert row["suppressed"] is None
        signal = frame["signal_dbm"]
        assert row["avg_signal_dbm"] == pytest.approx(signal.mean(), abs=1e-9)
        half = Z * float(np.std(signal.to_numpy(dtype=float), ddof=1)) / math.sqrt(len(signal))
        assert row["avg_signal_dbm_ci_low"] == pytest.approx(signal.mean() - half, abs=1e-9)
        assert row["avg_signal_dbm_ci_high"] == pytest.approx(signal.mean() + half, abs=1e-9)
        assert row["signal_percentiles"] == {
            p: nearest_rank(signal, p[1:]) for p in ("p50", "p10", "p90")
        }
        assert row["band"] == median_band(frame)
        assert sum(row["band_counts"].values()) == len(frame)
        oos = int((frame["status"] == "OUT_OF_SERVICE").sum())
        assert row["out_of_service_share"] == pytest.approx(oos / len(frame), abs=1e-12)
        low, high = wilson(oos, len(frame))
        assert row["out_of_service_share_ci_low"] == pytest.approx(low, abs=1e-9)
        assert row["out_of_service_share_ci_high"] == pytest.approx(high, abs=1e-9)
    assert served > 0
    assert withheld > 0  # the oracle covers suppressed cells too


def test_the_two_phones_cell_is_withheld_for_min_devices(
    client: TestClient, events: pd.DataFrame
) -> None:
    body = _get(client, res=7, **{"from": _iso(START)}, to=_iso(START + dt.timedelta(hours=HOURS)))
    cell = h3.latlng_to_cell(*TWO_PHONES, 7)
    row = next(r for r in body["rows"] if r["h3_cell"] == cell)
    assert row["events"] >= 10 * MIN_EVENTS
    assert (row["devices"], row["suppressed"]) == (2, "min_devices")
    assert row["avg_signal_dbm"] is None
    assert (body["meta"]["min_events"], body["meta"]["min_devices"]) == (MIN_EVENTS, MIN_DEVICES)


@pytest.mark.parametrize("res", ["8", "nine", "-1"])
def test_a_resolution_the_lake_does_not_keep_is_a_422_naming_res(
    client: TestClient, res: str
) -> None:
    response = client.get("/v1/coverage/h3", params={"res": res})
    assert response.status_code == 422, response.text
    assert response.json()["error"]["parameter"] == "res"


def test_res_defaults_to_9_and_the_meta_names_the_query(client: TestClient) -> None:
    body = _get(client, **{"from": _iso(START)}, to=_iso(START + dt.timedelta(hours=1)))
    assert body["resolution"] == 9
    assert {r["h3_resolution"] for r in body["rows"]} == {9}
    assert [q["name"] for q in body["meta"]["queries"]] == ["coverage_h3"]
    assert [p["table"] for p in body["meta"]["queries"][0]["partitions"]] == ["coverage_by_h3"]
