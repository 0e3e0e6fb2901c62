"""The whole pipeline, each service as its own process, checked against the ground truth.

producer (generate: late, duplicate and malformed records) → kinesalite → stream processor
(local Spark) → lake → catalog manager (sync against moto's Glue) → metrics API (DuckDB).
Every number the API returns must equal a pandas oracle over the producer's ground-truth file.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from signal_api.adapters.duckdb_engine import DuckDBEngine
from signal_api.app import create_app
from signal_api.settings import ApiSettings
from signal_catalog.core.tables import CATALOG_TABLES
from signal_common.lake import KPI_TABLES
from signal_local.endpoints import free_port, start_python_service

# recent enough that every valid event is plausible against its arrival (the processor
# quarantines events dated more than 30 days behind it)
START = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=6)).replace(minute=0, second=0, microsecond=0)


def _run(argv: list[str], env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p), **env}
    result = subprocess.run(
        [sys.executable, "-m", *argv], env=full_env, capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, (
        f"{argv[0]} failed:\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}"
    )
    return result


def _ground_truth(path: Path) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    events = {}
    for line in lines:
        if line["kind"] in ("event", "duplicate"):
            event = json.loads(line["data"])
            events.setdefault(event["event_id"], event)
    frame = pd.DataFrame(list(events.values()))
    frame["event_time"] = pd.to_datetime(frame["event_time"], utc=True, format="ISO8601")
    return frame, lines


@pytest.fixture(scope="module")
def pipeline(
    tmp_path_factory: pytest.TempPathFactory,
    kinesis_client: Any,
    kinesis_endpoint_url: str,
    moto_endpoint_url: str,
) -> dict[str, Any]:
    work = tmp_path_factory.mktemp("pipeline")
    stream = "integration"
    kinesis_client.create_stream(StreamName=stream, ShardCount=2)
    kinesis_client.get_waiter("stream_exists").wait(StreamName=stream, WaiterConfig={"Delay": 1})
    truth = work / "ground-truth.jsonl"
    _run(
        [
            "signal_producer.cli", "generate", "--events", "3000", "--seed", "42",
            "--start-time", START.isoformat(), "--rate", "5",
            "--late-rate", "0.05", "--duplicate-rate", "0.05", "--malformed-rate", "0.02",
            "--stream", stream, "--endpoint-url", kinesis_endpoint_url,
            "--ground-truth", str(truth), "--dead-letter", str(work / "dead.jsonl"),
            "--no-progress",
        ],
        {},
        timeout=300,
    )  # fmt: skip
    lake_root = f"file://{work}/lake"
    _run(
        [
            "signal_processor.cli", "run", "--stream", stream,
            "--endpoint-url", kinesis_endpoint_url, "--lake-root", lake_root,
            "--checkpoint", f"file://{work}/checkpoint", "--trigger-seconds", "1",
            "--max-records-per-batch", "1500", "--stop-when-idle", "2",
        ],
        {"SIGNAL_PROCESSOR_SHUFFLE_PARTITIONS": "2", "SIGNAL_PROCESSOR_LOG_LEVEL": "WARNING"},
        timeout=900,
    )  # fmt: skip
    catalog_env = {
        "SIGNAL_CATALOG_GLUE_ENDPOINT_URL": moto_endpoint_url,
        "SIGNAL_CATALOG_S3_ENDPOINT_URL": moto_endpoint_url,
        "SIGNAL_CATALOG_LAKE_ROOT": lake_root,
        "SIGNAL_CATALOG_GLUE_DATABASE": "integration_db",
    }
    _run(["signal_catalog.cli", "sync"], catalog_env, timeout=300)
    events, lines = _ground_truth(truth)
    return {
        "work": work,
        "lake_root": lake_root,
        "events": events,
        "lines": lines,
        "moto": moto_endpoint_url,
    }


@pytest.fixture(scope="module")
def api(pipeline: dict[str, Any]) -> Any:
    # min_events=1, min_devices=1: every figure is compared with the oracle
    # (suppression is tested in metrics-api's own tests)
    settings = ApiSettings(
        engine="duckdb",
        lake_root=pipeline["lake_root"],
        auth_enabled=False,
        min_events=1,
        min_devices=1,
    )
    engine = DuckDBEngine(pipeline["lake_root"])
    with TestClient(create_app(settings, engine)) as client:
        yield client


def _window(events: pd.DataFrame) -> dict[str, str]:
    start = events["event_time"].min().floor("h")
    end = events["event_time"].max().ceil("h") + pd.Timedelta(hours=1)
    return {"from": start.isoformat(), "to": end.isoformat()}


def assert_signal_strength_is(api: Any, events: pd.DataFrame) -> None:
    """/v1/kpis/signal-strength at 1 h equals the oracle (counts exact, averages to 1e-9)."""
    response = api.get(
        "/v1/kpis/signal-strength",
        params={**_window(events), "granularity": "1h", "by_network_type": "true"},
    )
    assert response.status_code == 200, response.text
    got = pd.DataFrame(response.json()["rows"])
    got["bucket_start"] = pd.to_datetime(got["bucket_start"], utc=True)
    events = events.assign(bucket_start=events["event_time"].dt.floor("h"))
    want = (
        events.groupby(["bucket_start", "operator", "network_type"])["signal_dbm"]
        .agg(event_count="count", avg="mean", min="min", max="max")
        .reset_index()
    )
    merged = want.merge(
        got, on=["bucket_start", "operator", "network_type"], how="outer", indicator=True
    )
    assert (merged["_merge"] == "both").all(), merged[merged["_merge"] != "both"]
    assert (merged["event_count_x"] == merged["event_count_y"]).all()
    assert ((merged["avg"] - merged["avg_signal_dbm"]).abs() <= 1e-9).all()
    assert (merged["min"] == merged["min_signal_dbm"]).all()
    assert (merged["max"] == merged["max_signal_dbm"]).all()


def test_signal_strength_per_hour_equals_the_ground_truth(
    pipeline: dict[str, Any], api: Any
) -> None:
    assert_signal_strength_is(api, pipeline["events"])


def test_pipeline_counts_equal_the_ground_truth(pipeline: dict[str, Any], api: Any) -> None:
    lines = pipeline["lines"]
    malformed = [line for line in lines if line["kind"] == "malformed"]
    duplicates_sent = len(lines) - len(malformed) - len(pipeline["events"])
    now = dt.datetime.now(dt.UTC)
    response = api.get(
        "/v1/pipeline",
        params={
            "from": (now - dt.timedelta(hours=3)).isoformat(),
            "to": (now + dt.timedelta(minutes=5)).isoformat(),
        },
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["rows_in"] == len(lines)
    assert body["valid_rows"] == len(pipeline["events"])
    assert body["quarantined_rows"] == len(malformed)
    assert body["duplicates_removed"] == duplicates_sent
    assert body["late_dropped"] == 0
    by_reason: dict[str, int] = {}
    for line in malformed:
        by_reason[line["reason"]] = by_reason.get(line["reason"], 0) + 1
    assert body["quarantined_by_reason"] == by_reason


def test_the_catalog_knows_every_table_and_partition(pipeline: dict[str, Any]) -> None:
    glue = boto3.client("glue", endpoint_url=pipeline["moto"], region_name="us-east-1")
    tables = {t["Name"] for t in glue.get_tables(DatabaseName="integration_db")["TableList"]}
    views = {f"{t.name}_per_{t.window_unit}" for t in KPI_TABLES}
    # every stream table and the alert evaluator's alert_events (#25; projected, no partitions)
    assert tables == {t.name for t in CATALOG_TABLES} | views
    lake = Path(pipeline["work"]) / "lake" / "status_count"
    on_disk = {
        (p.parent.name[3:], p.name[5:])
        for p in lake.glob("dt=*/hour=*")
        if any(p.glob("*.parquet"))
    }
    partitions = glue.get_partitions(DatabaseName="integration_db", TableName="status_count")[
        "Partitions"
    ]
    assert {tuple(p["Values"]) for p in partitions} == on_disk
    assert on_disk


def test_the_dashboard_shows_the_ground_truth(
    pipeline: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The dashboard over the real API over this pipeline's lake, in Debian's Chromium: its
    Pipeline health tiles equal the producer's ground truth."""
    from playwright.sync_api import sync_playwright

    logs = tmp_path_factory.mktemp("dashboard-logs")
    api_port, dashboard_port = free_port(), free_port()
    api = start_python_service(
        "metrics-api",
        "signal_api.main",
        port=api_port,
        env={
            "SIGNAL_API_LAKE_ROOT": pipeline["lake_root"],
            "SIGNAL_API_PORT": str(api_port),
            "SIGNAL_API_AUTH_ENABLED": "false",
        },
        log_dir=logs,
        probe_path="/healthz",
    )
    try:
        dashboard = start_python_service(
            "dashboard",
            "signal_dashboard.main",
            port=dashboard_port,
            env={"SIGNAL_DASHBOARD_API_URL": api.url, "SIGNAL_DASHBOARD_PORT": str(dashboard_port)},
            log_dir=logs,
            probe_path="/_stcore/health",
        )
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path="/usr/bin/chromium", headless=True, args=["--no-sandbox"]
                )
                page = browser.new_page()
                page.goto(dashboard.url + "/pipeline?range=6h")
                tile = page.locator("[data-tile='Valid events'] .signal-tile-value")
                tile.wait_for(timeout=60_000)
                valid = int(tile.inner_text().replace(",", ""))
                quarantined = page.locator("[data-tile='Quarantined'] .signal-tile-value")
                malformed = sum(1 for line in pipeline["lines"] if line["kind"] == "malformed")
                assert valid == len(pipeline["events"])
                assert int(quarantined.inner_text().replace(",", "")) == malformed
                browser.close()
        finally:
            dashboard.stop()
    finally:
        api.stop()


@pytest.fixture
def uncached_api(pipeline: dict[str, Any]) -> Any:
    settings = ApiSettings(
        engine="duckdb",
        lake_root=pipeline["lake_root"],
        auth_enabled=False,
        cache_ttl_s=0,
        min_events=1,
        min_devices=1,  # as `api`: every figure against the oracle
    )
    with TestClient(create_app(settings, DuckDBEngine(pipeline["lake_root"]))) as client:
        yield client


def _compact(pipeline: dict[str, Any]) -> str:
    """Compact every hour that has ended (no grace) and delete what it replaces at once."""
    env = {"SIGNAL_CATALOG_LAKE_ROOT": pipeline["lake_root"], "COLUMNS": "200"}
    argv = ["signal_catalog.cli", "compact", "--grace", "0", "--reader-grace", "0"]
    return _run(argv, env, timeout=300).stdout


def _files_per_closed_partition(pipeline: dict[str, Any]) -> set[int]:
    lake = Path(pipeline["work"]) / "lake"
    now = dt.datetime.now(dt.UTC)
    counts = set()
    for table in ("events", *(t.name for t in KPI_TABLES)):
        for d in (lake / table).glob("dt=*/hour=*"):
            ended = dt.datetime.strptime(d.parent.name[3:], "%Y-%m-%d").replace(
                tzinfo=dt.UTC
            ) + dt.timedelta(hours=int(d.name[5:]) + 1)
            if ended <= now:
                counts.add(len(list(d.glob("*.parquet"))))
    return counts


def test_compaction_then_late_events_into_compacted_hours_keep_the_ground_truth(
    pipeline: dict[str, Any], uncached_api: Any, kinesis_endpoint_url: str
) -> None:
    """Compaction changes no figure and the catalog stays true (sync, drift); events that
    arrive later for the compacted hours count at once and are folded by the next run."""
    catalog_env = {
        "SIGNAL_CATALOG_GLUE_ENDPOINT_URL": pipeline["moto"],
        "SIGNAL_CATALOG_S3_ENDPOINT_URL": pipeline["moto"],
        "SIGNAL_CATALOG_LAKE_ROOT": pipeline["lake_root"],
        "SIGNAL_CATALOG_GLUE_DATABASE": "integration_db",
    }
    report = _compact(pipeline)
    assert "partition(s) compacted" in report
    assert _files_per_closed_partition(pipeline) == {1}
    assert_signal_strength_is(uncached_api, pipeline["events"])
    _run(["signal_catalog.cli", "sync"], catalog_env, timeout=300)
    _run(["signal_catalog.cli", "drift"], catalog_env, timeout=300)

    work = pipeline["work"]
    truth = work / "late-ground-truth.jsonl"
    _run(
        [
            "signal_producer.cli", "generate", "--events", "400", "--seed", "43",
            "--start-time", START.isoformat(), "--rate", "5",
            "--stream", "integration", "--endpoint-url", kinesis_endpoint_url,
            "--ground-truth", str(truth), "--no-progress",
        ],
        {},
        timeout=300,
    )  # fmt: skip
    _run(
        [
            "signal_processor.cli", "run", "--stream", "integration",
            "--endpoint-url", kinesis_endpoint_url, "--lake-root", pipeline["lake_root"],
            "--checkpoint", f"file://{work}/checkpoint", "--trigger-seconds", "1",
            "--max-records-per-batch", "1500", "--stop-when-idle", "2",
        ],
        {"SIGNAL_PROCESSOR_SHUFFLE_PARTITIONS": "2", "SIGNAL_PROCESSOR_LOG_LEVEL": "WARNING"},
        timeout=900,
    )  # fmt: skip
    late, _ = _ground_truth(truth)
    both = pd.concat([pipeline["events"], late], ignore_index=True)
    assert _files_per_closed_partition(pipeline) != {1}  # the late files sit next to them
    assert_signal_strength_is(uncached_api, both)
    _compact(pipeline)
    assert _files_per_closed_partition(pipeline) == {1}
    assert_signal_strength_is(uncached_api, both)
    _run(["signal_catalog.cli", "drift"], catalog_env, timeout=300)
