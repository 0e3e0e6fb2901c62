"""/v1/alerts (= /v1/alerts/active), /history and /rules over a lake the real evaluator wrote."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from alert_fixtures import T0, WINDOW, history, window_events, write_events
from fastapi.testclient import TestClient

from signal_api.adapters.duckdb_engine import DuckDBEngine
from signal_api.alerts.store import LocalAlertStore
from signal_api.app import create_app
from signal_api.settings import ApiSettings
from signal_api.wiring import LogNotifier, build_evaluator

SETTLE = dt.timedelta(seconds=60)
FIRING_AT = T0 + dt.timedelta(minutes=45) + SETTLE  # the 2000 hole fires in this cycle
NOW = FIRING_AT + dt.timedelta(seconds=20)


def lake(root: Path) -> None:
    rng = np.random.default_rng(4)
    frames = []
    for i in range(10):
        start = T0 + WINDOW * i
        frames.append(
            window_events(
                rng, code="2000", start=start, n=90, devices=12, weak_share=0.6 if i >= 6 else 0.0
            )
        )
        frames.append(window_events(rng, code="1000", start=start, n=90, devices=12))
    write_events(root, pd.concat(frames, ignore_index=True))


def app_client(root: Path, **overrides: object) -> tuple[TestClient, DuckDBEngine]:
    settings = ApiSettings(lake_root=f"file://{root}", auth_enabled=False, **overrides)
    engine = DuckDBEngine(settings.lake_root)
    return TestClient(create_app(settings, engine, clock=lambda: NOW)), engine


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("alert-api")
    lake(root)
    settings = ApiSettings(lake_root=f"file://{root}", auth_enabled=False)
    engine = DuckDBEngine(settings.lake_root)
    try:
        evaluator = build_evaluator(settings, engine, notifier=LogNotifier())
        for m in range(36, 48, 1):
            evaluator.evaluate(T0 + dt.timedelta(minutes=m))
        evaluator.evaluate(FIRING_AT)
    finally:
        engine.close()
    return root


ACTIVE_PATHS = pytest.mark.parametrize("path", ["/v1/alerts", "/v1/alerts/active"])


@ACTIVE_PATHS
def test_never_evaluated_is_a_503_not_all_clear(tmp_path: Path, path: str) -> None:
    lake(tmp_path)
    client, engine = app_client(tmp_path)
    try:
        response = client.get(path)
    finally:
        engine.close()
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "alerts_not_evaluated"
    assert "signal-api alerts evaluate" in response.json()["error"]["message"]


@ACTIVE_PATHS
def test_active_reads_the_newest_cycle(evaluated: Path, path: str) -> None:
    client, engine = app_client(evaluated)
    try:
        body = client.get(path).json()
        only_1000 = client.get(path, params={"postal_code": "1000"}).json()
    finally:
        engine.close()
    assert body["evaluated_at"] == FIRING_AT.isoformat().replace("+00:00", "Z")
    assert body["stale"] is False
    assert body["age_s"] == 20
    fired = [a for a in body["alerts"] if a["alert_id"] == "coverage_hole:postal_code:2000"]
    assert len(fired) == 1
    assert fired[0]["state"] == "firing"
    assert fired[0]["since"].startswith((T0 + 6 * WINDOW).strftime("%Y-%m-%dT%H:%M:%S"))
    # the newest window (minutes 40-45) as pandas counts it from the events on disk
    assert fired[0]["sample_size"] == 90
    assert fired[0]["measures"]["devices"] == 12
    assert body["alerts"][0]["state"] == "firing"  # firing before pending
    assert only_1000["alerts"] == []


def test_history_lists_the_recorded_transitions(evaluated: Path) -> None:
    client, engine = app_client(evaluated)
    frm, to = T0.isoformat(), NOW.isoformat()
    try:
        body = client.get("/v1/alerts/history", params={"from": frm, "to": to}).json()
        empty = client.get(
            "/v1/alerts/history", params={"from": frm, "to": (T0 + WINDOW).isoformat()}
        ).json()
        too_long = client.get(
            "/v1/alerts/history",
            params={"from": (NOW - dt.timedelta(hours=25)).isoformat(), "to": to},
        )
        backwards = client.get("/v1/alerts/history", params={"from": to, "to": frm})
        twice = client.get("/v1/alerts/history?from=" + frm + "&from=" + frm)
        epoch = client.get("/v1/alerts/history", params={"from": "1795428000"})
    finally:
        engine.close()
    rows = history(LocalAlertStore(f"file://{evaluated}"), T0, NOW)
    assert [t["key"] for t in body["transitions"]] == [r["transition_key"] for r in rows]
    states = [(t["alert_id"], t["state"]) for t in body["transitions"]]
    assert ("coverage_hole:postal_code:2000", "pending") in states
    assert ("coverage_hole:postal_code:2000", "firing") in states
    assert empty["transitions"] == []
    for response in (too_long, backwards, twice, epoch):
        assert response.status_code == 422, response.text


def test_rules_publish_defaults_and_overrides(tmp_path: Path) -> None:
    client, engine = app_client(tmp_path, alert_hole_min_devices=9, alert_hole_windows=4)
    try:
        body = client.get("/v1/alerts/rules").json()
    finally:
        engine.close()
    by_rule = {r["rule"]: r for r in body["rules"]}
    assert set(by_rule) == {"out_of_service", "signal_drop", "coverage_hole"}
    assert body["window_minutes"] == 5
    assert body["resolve_after_windows"] == 3
    hole = by_rule["coverage_hole"]
    assert hole["thresholds"]["min_devices"] == 9
    assert hole["fire_after_windows"] == 4
    assert hole["thresholds"]["hole_max_dbm"] == {"2G": -100, "3G": -105, "4G": -110, "5G": -110}
    assert by_rule["out_of_service"]["thresholds"]["share"] == 0.2
    assert by_rule["signal_drop"]["thresholds"]["drop_db"] == 10.0
    assert by_rule["signal_drop"]["thresholds"]["min_baseline_events"] == 100
    assert "100 baseline events" in by_rule["signal_drop"]["source"]
    assert all(r["source"] for r in body["rules"])


def test_the_signal_drop_baseline_minimum_is_a_setting(tmp_path: Path) -> None:
    client, engine = app_client(tmp_path, alert_min_baseline_events=250)
    try:
        body = client.get("/v1/alerts/rules").json()
    finally:
        engine.close()
    (drop,) = [r for r in body["rules"] if r["rule"] == "signal_drop"]
    assert drop["thresholds"]["min_baseline_events"] == 250
