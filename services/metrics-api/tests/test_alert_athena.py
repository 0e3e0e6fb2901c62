"""The evaluator's queries (signal_api.alerts.queries) obey Athena's execution-parameter rules,
checked by test_athena_rules' checker (which discovers only signal_api.core.queries' builders),
and run on DuckDB against the same events as a pandas oracle."""

from __future__ import annotations

import datetime as dt
import inspect
import typing
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from alert_fixtures import T0, WINDOW, window_events, write_events
from test_athena_rules import athena_violations  # pants: no-infer-dep (in BUILD)

from signal_api.adapters.athena_engine import athena_literal
from signal_api.adapters.duckdb_engine import DuckDBEngine
from signal_api.alerts import queries
from signal_api.alerts.rules import AlertRules
from signal_api.core.queries import Query

RULES = AlertRules()
FIRST_END = dt.datetime(2026, 11, 22, 23, 55, tzinfo=dt.UTC)  # crosses midnight
LAST_END = dt.datetime(2026, 11, 23, 0, 50, tzinfo=dt.UTC)
SCAN, MIDDLE, EVENTS_SCAN = queries.scan_ranges(
    FIRST_END,
    LAST_END,
    window=RULES.window,
    recent=dt.timedelta(minutes=15),
    baseline=dt.timedelta(hours=24),
)
CALLS: dict[str, list[Query]] = {
    "coverage_windows": [
        queries.coverage_windows(SCAN, MIDDLE, window_s=300),
        queries.coverage_windows(SCAN, None, window_s=300),
    ],
    "hole_windows": [queries.hole_windows(EVENTS_SCAN, RULES.bands, window_s=300)],
}


def test_every_builder_is_checked() -> None:
    found = {
        name
        for name, f in inspect.getmembers(queries, inspect.isfunction)
        if f.__module__ == queries.__name__
        and not name.startswith("_")
        and typing.get_type_hints(f).get("return") is Query
    }
    assert found == set(CALLS)


@pytest.mark.parametrize("name", sorted(CALLS))
def test_obeys_athena_rules(name: str) -> None:
    for query in CALLS[name]:
        sent = [athena_literal(v) for v in query.params]
        assert sent  # the dt/hour and time bounds are bound parameters
        assert athena_violations(query.sql, query.params) == [], query.sql


def test_hole_windows_against_pandas(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    frames = [
        window_events(
            rng, code=c, start=T0 + WINDOW * i, n=int(rng.integers(5, 60)), devices=d, weak_share=w
        )
        for i in range(14)
        for c, d, w in (("1000", 3, 0.5), ("2000", 9, 0.1))
    ]
    events = pd.concat(frames, ignore_index=True)
    events.loc[events.index % 7 == 0, "network_type"] = "3G"  # weak there at <= -105 dBm
    write_events(tmp_path, events)
    scan = queries.scan_ranges(
        T0 + 2 * WINDOW, T0 + 12 * WINDOW, window=WINDOW, recent=WINDOW * 3, baseline=WINDOW * 6
    )[2]
    engine = DuckDBEngine(f"file://{tmp_path}")
    try:
        rows = engine.run(queries.hole_windows(scan, RULES.bands, window_s=300))
    finally:
        engine.close()
    threshold = events["network_type"].map({"3G": -105, "4G": -110})
    ev = events.assign(weak=events["signal_dbm"] <= threshold)
    ev = ev[(ev.event_time >= pd.Timestamp(scan.start)) & (ev.event_time < pd.Timestamp(scan.end))]
    ev = ev.assign(bucket=(ev.event_time.astype("int64") // 10**9 // 300 * 300))
    want = (
        ev.groupby(["postal_code", "bucket"])
        .agg(events=("weak", "size"), weak=("weak", "sum"), devices=("device_id", "nunique"))
        .reset_index()
    )
    got = pd.DataFrame(rows)[["postal_code", "bucket", "events", "weak", "devices"]]
    pd.testing.assert_frame_equal(
        got.astype({"bucket": "int64", "events": "int64", "weak": "int64", "devices": "int64"}),
        want.astype({"bucket": "int64", "events": "int64", "weak": "int64", "devices": "int64"}),
    )
    assert len(want) == 2 * 11  # windows ending T0+10min..T0+60min, two codes
