"""/v1/cells/worst against an oracle over the raw events (#24): per serving cell (operator,
network type, cell_id) the events, devices, out-of-service share and its Wilson interval, the
nearest-rank p10 and p50 signal and the centroid, ranked by share (highest first) then p10
(weakest first), withheld cells after every served one; `top` bounds."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator
from pathlib import Path

import h3
import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from signal_api.adapters.duckdb_engine import DuckDBEngine
from signal_api.app import create_app
from signal_api.settings import ApiSettings
from signal_testing.fixture_lake import make_events, write_kpi_partials

START = dt.datetime(2026, 11, 24, 6, 0, tzinfo=dt.UTC)
HOURS = 3
Z = 1.959963984540054
MIN_EVENTS, MIN_DEVICES = 20, 5
HLL_95 = 2 * 1.04 / math.sqrt(2**12)
CELL = ["operator", "network_type", "cell_id"]


@pytest.fixture(scope="module")
def events() -> pd.DataFrame:
    events = make_events(8_000, start=START, hours=HOURS, seed=17)
    rng = np.random.default_rng(3)
    # cell 7 of every operator and RAT is an outage: most of its events out of service
    bad = events["cell_id"] == 7
    events.loc[bad & (rng.random(len(events)) < 0.7), "status"] = "OUT_OF_SERVICE"
    # cell 40 of Base 5G: many events from one phone (withheld: min_devices)
    one = (events["cell_id"] == 40) & (events["operator"] == "Base")
    events.loc[one, "device_id"] = "phone-1"
    return events


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory, events: pd.DataFrame) -> Iterator[TestClient]:
    root: Path = tmp_path_factory.mktemp("cells-lake")
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


def nearest_rank(values: pd.Series, p: int) -> int:
    ordered = np.sort(values.to_numpy())
    return int(ordered[max(1, math.ceil(p * len(ordered) / 100)) - 1])


def wilson(part: int, n: int) -> tuple[float, float]:
    p = part / n
    centre = (p + Z**2 / (2 * n)) / (1 + Z**2 / n)
    half = Z * math.sqrt(p * (1 - p) / n + Z**2 / (4 * n**2)) / (1 + Z**2 / n)
    return centre - half, centre + half


def oracle(events: pd.DataFrame) -> pd.DataFrame:
    """Every serving cell's figures and its rank, from the raw events."""
    reporting = events[events["cell_id"].notna()].assign(
        cell_id=lambda f: f["cell_id"].astype("int64")
    )
    rows = []
    for key, frame in reporting.groupby(CELL):
        n, devices = len(frame), frame["device_id"].dropna().nunique()
        oos = int((frame["status"] == "OUT_OF_SERVICE").sum())
        withheld = (
            "min_events" if n < MIN_EVENTS else "min_devices" if devices < MIN_DEVICES else None
        )
        rows.append({
            **dict(zip(CELL, key, strict=True)), "events": n, "devices": devices, "oos": oos,
            "suppressed": withheld, "share": oos / n,
            "p10": nearest_rank(frame["signal_dbm"], 10),
            "p50": nearest_rank(frame["signal_dbm"], 50),
            "latitude": frame["latitude"].mean(), "longitude": frame["longitude"].mean(),
        })  # fmt: skip
    table = pd.DataFrame(rows)
    served = table[table["suppressed"].isna()].sort_values(
        ["share", "p10", *CELL], ascending=[False, True, True, True, True]
    )
    withheld = table[table["suppressed"].notna()].sort_values(
        ["events", *CELL], ascending=[False, True, True, True]
    )
    return pd.concat([served, withheld], ignore_index=True)


def test_the_worst_cells_are_ranked_as_the_raw_events_rank_them(
    client: TestClient, events: pd.DataFrame
) -> None:
    response = client.get(
        "/v1/cells/worst",
        params={
            "top": 100,
            "from": _iso(START + dt.timedelta(minutes=5)),
            "to": _iso(START + dt.timedelta(hours=HOURS)),
        },
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["from"] == _iso(START)  # widened to whole hours: the table's window
    want = oracle(events)
    assert body["cells"] == len(want)
    assert body["withheld"] == int(want["suppressed"].notna().sum()) > 0
    top = want.head(100)
    assert [(r["operator"], r["network_type"], r["cell_id"]) for r in body["rows"]] == list(
        top[CELL].itertuples(index=False, name=None)
    )
    assert [r["rank"] for r in body["rows"]] == list(range(1, len(top) + 1))
    assert body["rows"][0]["cell_id"] == 7  # the outage cell leads
    for row, (_, expected) in zip(body["rows"], top.iterrows(), strict=True):
        assert row["events"] == expected["events"]
        assert abs(row["devices"] - expected["devices"]) <= max(1.0, HLL_95 * expected["devices"])
        assert row["suppressed"] == expected["suppressed"]
        if expected["suppressed"]:
            assert [
                row[k] for k in ("out_of_service_share", "signal_p10", "latitude", "h3_cell")
            ] == [None] * 4
            continue
        assert row["out_of_service_share"] == pytest.approx(expected["share"], abs=1e-12)
        low, high = wilson(int(expected["oos"]), int(expected["events"]))
        assert row["out_of_service_share_ci_low"] == pytest.approx(low, abs=1e-9)
        assert row["out_of_service_share_ci_high"] == pytest.approx(high, abs=1e-9)
        assert (row["signal_p10"], row["signal_p50"]) == (expected["p10"], expected["p50"])
        assert row["latitude"] == pytest.approx(expected["latitude"], abs=1e-9)
        assert row["h3_cell"] == h3.latlng_to_cell(row["latitude"], row["longitude"], 9)


def test_top_keeps_the_first_n_and_is_bounded(client: TestClient) -> None:
    window = {"from": _iso(START), "to": _iso(START + dt.timedelta(hours=HOURS))}
    five = client.get("/v1/cells/worst", params={"top": 5, **window}).json()
    hundred = client.get("/v1/cells/worst", params={"top": 100, **window}).json()
    assert five["rows"] == hundred["rows"][:5]
    for bad in ("0", "1001", "ten"):
        response = client.get("/v1/cells/worst", params={"top": bad})
        assert response.status_code == 422, response.text
        assert response.json()["error"]["parameter"] == "top"
