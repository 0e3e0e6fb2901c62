"""The one test-event generator (its columns, options and refusal of unknown draws) and the
vectorized band."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from signal_common.quality import BAND_NAMES, DEFAULT_BANDS
from signal_testing.bands import band_indices
from signal_testing.fixture_lake import Outage, RarePlace, make_events

START = dt.datetime(2026, 11, 22, 22, 30, tzinfo=dt.UTC)
# positions drawn around the postal codes' centres, after the outage (as the dashboard's fixture)
OUTAGE_ORDER = (
    "event_time", "postal_code", "status", "signal_dbm", "outage", "latitude", "longitude",
    "satellites", "satellites_missing", "operator", "network_type", "provider",
    "gps_precision_m", "batch_id", "rare",
)  # fmt: skip


def test_the_fixture_lake_events_carry_every_column_in_the_10_minute_batches() -> None:
    events = make_events(2_000, start=START, hours=2, seed=1)
    assert list(events.columns) == [
        "event_time", "operator", "network_type", "signal_dbm", "provider", "gps_precision_m",
        "satellites", "latitude", "longitude", "postal_code", "status", "batch_id", "band",
        "device_id", "cell_id",
    ]  # fmt: skip
    assert events["event_time"].is_monotonic_increasing
    assert events["event_time"].min() >= pd.Timestamp(START)
    assert events["event_time"].max() < pd.Timestamp(START + dt.timedelta(hours=2))
    minutes = (events["event_time"] - pd.Timestamp(START)) // pd.Timedelta(minutes=10)
    assert (events["batch_id"] == minutes).all()
    assert events["device_id"].isna().any()
    assert events["cell_id"].isna().any()


def test_a_seed_gives_the_same_events_and_another_seed_others() -> None:
    pd.testing.assert_frame_equal(
        make_events(300, start=START, hours=1, seed=4),
        make_events(300, start=START, hours=1, seed=4),
    )
    assert not make_events(300, start=START, hours=1, seed=4).equals(
        make_events(300, start=START, hours=1, seed=5)
    )


def test_an_outage_and_a_rare_place_and_dropped_columns() -> None:
    until = START + dt.timedelta(hours=1)
    since = START + dt.timedelta(minutes=40)
    events = make_events(
        3_000,
        start=START,
        until=until,
        seed=2,
        order=OUTAGE_ORDER,
        postal_codes={"A": (50.0, 4.0), "B": (51.0, 5.0)},
        jitter_deg=(0.001, 0.001),
        batches=3,
        device_ids=False,
        cells=None,
        outage=Outage("A", since, share=1.0, drop_db=30, clip=(-150, -40)),
        rare=RarePlace("C", 5, "B", (49.0, 3.0)),
    )
    assert "device_id" not in events.columns
    assert "cell_id" not in events.columns
    hit = (events["postal_code"] == "A") & (events["event_time"] >= pd.Timestamp(since))
    assert hit.any()
    assert (events.loc[hit, "status"] == "OUT_OF_SERVICE").all()
    assert events["signal_dbm"].between(-150, -40).all()
    assert set(events["batch_id"]) == {0, 1, 2}
    rare = events[events["postal_code"] == "C"]
    assert len(rare) == 5
    assert (rare["latitude"] == 49.0).all()
    assert (events.loc[events["postal_code"] == "A", "latitude"] - 50.0).abs().max() < 0.01


def test_an_unknown_draw_is_named() -> None:
    with pytest.raises(ValueError, match="unknown draws \\['colour'\\]"):
        make_events(10, start=START, hours=1, seed=1, order=("event_time", "colour"))


def test_band_indices_agree_with_each_events_band() -> None:
    rng = np.random.default_rng(3)
    networks = ("2G", "3G", "4G", "5G")
    net, signal = rng.integers(0, 4, 5_000), rng.integers(-140, -40, 5_000)
    expected = [
        BAND_NAMES.index(DEFAULT_BANDS[networks[i]].band(int(s)))
        for i, s in zip(net, signal, strict=True)
    ]
    assert band_indices(net, signal, networks).tolist() == expected
