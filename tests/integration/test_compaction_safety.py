"""Compaction under readers, and compaction killed at random points.

A lake of KPI partials over many hours (one file per table, hour and 10-minute batch, as the
processor writes them) is compacted by `signal-catalog compact` in its own process while the
metrics API (DuckDB, no result cache) answers in a loop; every answer must equal a pandas oracle
over the events. Then the compaction is killed with SIGKILL at random moments and rerun: every
answer in between and after must still equal the oracle, and the last run leaves one file per
partition.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from signal_api.adapters.duckdb_engine import DuckDBEngine
from signal_api.app import create_app
from signal_api.settings import ApiSettings
from signal_common.lake import KPI_TABLES
from signal_testing.fixture_lake import make_events, write_kpi_partials

HOURS = 30
START = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=HOURS + 3)).replace(
    minute=0, second=0, microsecond=0
)


def write_lake(root: Path, events: pd.DataFrame) -> None:
    """The partials and the processor's commit head (every batch committed)."""
    write_kpi_partials(root, events, tag="run-")
    heads = root / "_commits"
    heads.mkdir(parents=True, exist_ok=True)
    committed = int(events["batch_id"].max()) + 1
    (heads / "r-000000000001.json").write_text(json.dumps({"run_id": "r-1", "seq": committed}))


def expected_signal(events: pd.DataFrame) -> list[tuple[Any, ...]]:
    """The oracle of /v1/kpis/signal-strength at 1 h: count, mean, min, max per bucket × key."""
    framed = events.assign(bucket=events["event_time"].dt.floor("h"))
    grouped = framed.groupby(["bucket", "operator", "network_type"])["signal_dbm"].agg(
        ["count", "mean", "min", "max"]
    )
    return [
        (b.isoformat(), o, n, int(c), float(m), int(lo), int(hi))
        for (b, o, n), (c, m, lo, hi) in grouped.iterrows()
    ]


def expected_status(events: pd.DataFrame) -> dict[tuple[str, str], int]:
    return {k: int(v) for k, v in events.groupby(["postal_code", "status"]).size().items()}


@pytest.fixture
def lake(tmp_path: Path) -> tuple[Path, pd.DataFrame]:
    events = make_events(40_000, start=START, hours=HOURS, seed=7)
    write_lake(tmp_path / "lake", events)
    return tmp_path / "lake", events


@pytest.fixture
def api(lake: tuple[Path, pd.DataFrame]) -> Iterator[TestClient]:
    root = f"file://{lake[0]}"
    # min_events=1, min_devices=1: every figure is compared with the oracle
    # (suppression is tested in metrics-api's own tests)
    settings = ApiSettings(
        engine="duckdb",
        lake_root=root,
        auth_enabled=False,
        cache_ttl_s=0,
        min_events=1,
        min_devices=1,
    )
    with TestClient(create_app(settings, DuckDBEngine(root))) as client:
        yield client


def window() -> dict[str, str]:
    return {
        "from": START.isoformat(),
        "to": (START + dt.timedelta(hours=HOURS)).isoformat(),
    }


def read_and_check(api: TestClient, events: pd.DataFrame) -> None:
    """One read of each kind; each must equal the oracle exactly (averages to 1e-9)."""
    response = api.get("/v1/kpis/signal-strength", params={**window(), "granularity": "1h"})
    assert response.status_code == 200, response.text
    got = [
        (
            pd.Timestamp(r["bucket_start"]).isoformat(),
            r["operator"],
            r["network_type"],
            r["event_count"],
            r["avg_signal_dbm"],
            r["min_signal_dbm"],
            r["max_signal_dbm"],
        )
        for r in response.json()["rows"]
    ]
    want = expected_signal(events)
    assert [g[:4] + g[5:] for g in got] == [w[:4] + w[5:] for w in want]
    assert all(abs(g[4] - w[4]) <= 1e-9 for g, w in zip(got, want, strict=True))
    response = api.get("/v1/kpis/status-counts", params={**window(), "granularity": "1h"})
    assert response.status_code == 200, response.text
    totals: dict[tuple[str, str], int] = {}
    for r in response.json()["rows"]:
        key = (r["postal_code"], r["status"])
        totals[key] = totals.get(key, 0) + r["event_count"]
    assert totals == expected_status(events)


def compact_argv(*extra: str) -> list[str]:
    return [sys.executable, "-m", "signal_catalog.cli", "compact", "--grace", "0", *extra]


def compact_env(root: Path) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(p for p in sys.path if p),
        "SIGNAL_CATALOG_LAKE_ROOT": f"file://{root}",
        "COLUMNS": "200",
    }


def file_states(root: Path) -> tuple[int, int]:
    """(compacted files, processor files) in the KPI tables right now."""
    names = [p.name for t in KPI_TABLES for p in (root / t.name).rglob("*.parquet")]
    compacted = sum(n.startswith("compacted-") for n in names)
    return compacted, len(names) - compacted


def files_per_partition(root: Path) -> set[int]:
    return {
        len(list(d.glob("*.parquet")))
        for t in KPI_TABLES
        for d in (root / t.name).glob("dt=*/hour=*")
    }


def test_readers_see_exact_figures_while_compaction_runs(
    lake: tuple[Path, pd.DataFrame], api: TestClient
) -> None:
    root, events = lake
    read_and_check(api, events)
    env = compact_env(root)
    states: list[tuple[int, int]] = []
    # two passes, as in production: the first writes compacted files next to what they
    # replace, the second (after a reader grace longer than any of these reads) deletes
    for argv in (compact_argv("--reader-grace", "3"), compact_argv("--reader-grace", "3")):
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        while proc.poll() is None:
            states.append(file_states(root))
            read_and_check(api, events)
        _, err = proc.communicate()
        assert proc.returncode == 0, err.decode()[-2000:]
        time.sleep(3.5)
    read_and_check(api, events)
    mixed = [s for s in states if s[0] and s[1]]
    assert mixed, f"no read happened while compacted and replaced files coexisted: {states}"
    assert files_per_partition(root) == {1}


def test_compaction_killed_at_random_points_loses_and_doubles_nothing(
    lake: tuple[Path, pd.DataFrame], api: TestClient
) -> None:
    root, events = lake
    env = compact_env(root)
    rng = random.Random(20261125)
    partitions = sum(1 for t in KPI_TABLES for _ in (root / t.name).glob("dt=*/hour=*"))
    seen: list[tuple[int, int]] = []
    # kill once the run has compacted a random number of partitions: the kill lands wherever
    # that run is by then (reading, writing a file, deleting what it replaces)
    for target in sorted(rng.sample(range(5, partitions - 5), 6)):
        proc = subprocess.Popen(
            compact_argv("--reader-grace", "0"),
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        while proc.poll() is None and file_states(root)[0] < target:
            time.sleep(rng.uniform(0, 0.02))
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        seen.append(file_states(root))
        read_and_check(api, events)  # whatever state the kill left
    final = subprocess.run(compact_argv("--reader-grace", "0"), env=env, capture_output=True)
    assert final.returncode == 0, final.stderr.decode()[-2000:]
    read_and_check(api, events)
    assert files_per_partition(root) == {1}
    assert not list(root.rglob(".*.tmp")), "a killed write left a temporary file behind"
    partial = [s for s in seen if s[1] and s[0]]
    assert len(partial) >= 3, f"too few kills landed in the middle of a compaction: {seen}"
