"""Fixtures: a lake of partial aggregates built from a known list of events, and the app on it.

The partials are written exactly as the stream processor lays them out (signal_common.lake):
Hive-style `dt=/hour=` directories of the window start, one Parquet file per micro-batch, and each
event assigned to a random micro-batch, so most window+key pairs are split across several rows in
several files. Tests compare every API number with pandas computed straight from the raw events.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from signal_api.adapters.duckdb_engine import DuckDBEngine
from signal_api.app import create_app
from signal_api.settings import ApiSettings
from signal_api.wiring import LogNotifier, build_evaluator
from signal_testing import fixture_lake
from signal_testing.fixture_lake import Outage, write_lake

pytest_plugins = ["signal_testing.pytest_plugin"]

START = dt.datetime(2026, 11, 22, 22, 30, tzinfo=dt.UTC)  # crosses midnight: two dt partitions
END = dt.datetime(2026, 11, 23, 1, 30, tzinfo=dt.UTC)
OPERATORS = ["Orange", "Proximus", "Base O'Neil"]  # a quote in real data must survive binding
NETWORKS = ["2G", "3G", "4G", "5G"]
PROVIDERS = ["gps", "network", "fused"]
POSTAL_CODES = ["1000", "1050", "2000", "3000", "9000"]
STATUSES = ["IN_SERVICE", "OUT_OF_SERVICE", "EMERGENCY_ONLY", "POWER_OFF"]
TROUBLE_CODE = "9000"  # out of service in the last 20 minutes: the alerts scenario
TROUBLE_FROM = END - dt.timedelta(minutes=20)
N_EVENTS = 6000
N_BATCHES = 3
N_DEVICES = 600


# The draws in the order these events were first made in, so the seed keeps giving them.
ORDER = (
    "event_time",
    "postal_code",
    "status",
    "signal_dbm",
    "outage",
    "satellites",
    "satellites_missing",
    "operator",
    "network_type",
    "provider",
    "gps_precision_m",
    "latitude",
    "longitude",
    "batch_id",
    "device_id",
    "device_missing",
)


def make_events(seed: int = 7) -> pd.DataFrame:
    """The known events (UTC event times with microseconds)."""
    return fixture_lake.make_events(
        N_EVENTS,
        start=START,
        until=END,
        seed=seed,
        order=ORDER,
        operators=OPERATORS,
        networks=NETWORKS,
        providers=PROVIDERS,
        postal_codes=POSTAL_CODES,
        statuses=STATUSES,
        status_weights=[0.8, 0.1, 0.05, 0.05],
        signal_dbm=(-130, -50),
        precision_m=(0.5, 80),
        precision_decimals=3,
        satellites_missing=0.3,
        latitude=(50.6, 51.3),
        longitude=(3.0, 5.5),
        batches=N_BATCHES,
        # 600 devices (about 10 events each, so the sketches of a long range leave exact coupon
        # mode), 2 % of events without an id (not counted as a device)
        devices=N_DEVICES,
        cells=None,
        outage=Outage(TROUBLE_CODE, TROUBLE_FROM, 0.7, 25, (-150, -20)),
    )


def make_batches(seed: int = 11) -> pd.DataFrame:
    """Known pipeline_batches rows (one per micro-batch)."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(24):
        batch_time = START + dt.timedelta(minutes=7 * i + 3, seconds=int(rng.integers(0, 59)))
        reasons = {"invalid_json": int(rng.integers(0, 5)), "missing": int(rng.integers(0, 3))}
        if i % 5 == 0:
            reasons["martian"] = 2  # a reason the API does not know: reported as "other"
        quarantined = sum(reasons.values())
        valid = int(rng.integers(50, 400))
        rows.append(
            {
                "batch_id": i,
                "batch_time": batch_time,
                "rows_in": valid + quarantined,
                "valid_rows": valid,
                "quarantined_rows": quarantined,
                "quarantined_by_reason": list(reasons.items()),
                "duplicates_removed": int(rng.integers(0, 10)),
                "max_lateness_s": float(rng.uniform(0, 30)),
                "max_event_time": batch_time - dt.timedelta(seconds=int(rng.integers(1, 20))),
                "arrival_watermark": batch_time - dt.timedelta(minutes=10),
                "processing_ms": int(rng.integers(100, 2000)),
                "run_id": "r-00000000000a" if i < 12 else "r-00000000000b",
                "late_dropped": (i % 7 == 3) * (i + 1),  # never in a healthy job; summed here
                "millis_behind_latest": (i * 7919) % 5000,
                "source_positions": None,
            }
        )
    frame = pd.DataFrame(rows)
    for column in ("batch_time", "max_event_time", "arrival_watermark"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame


@pytest.fixture(scope="session")
def events() -> pd.DataFrame:
    """The known raw events behind the fixture lake."""
    return make_events()


@pytest.fixture(scope="session")
def batches() -> pd.DataFrame:
    """The known pipeline_batches rows of the fixture lake."""
    return make_batches()


@pytest.fixture(scope="session")
def lake(
    tmp_path_factory: pytest.TempPathFactory, events: pd.DataFrame, batches: pd.DataFrame
) -> Path:
    """A lake root holding the fixture partials."""
    root = tmp_path_factory.mktemp("lake")
    write_lake(root, events, batches)
    evaluate_alerts_once(root)
    return root


def evaluate_alerts_once(root: Path) -> None:
    """One alert-evaluator cycle at END (#25), so /v1/alerts/active has a state to read."""
    engine = DuckDBEngine(root.as_uri(), threads=1)
    try:
        build_evaluator(api_settings(root), engine, notifier=LogNotifier()).evaluate(END)
    finally:
        engine.close()


@pytest.fixture(scope="session")
def engine(lake: Path) -> Iterator[DuckDBEngine]:
    """A DuckDBEngine over the fixture lake."""
    eng = DuckDBEngine(lake.as_uri(), threads=1)
    yield eng
    eng.close()


def api_settings(lake: Path, **overrides: Any) -> ApiSettings:
    """Settings for tests: auth off, generous limits, small alert windows."""
    values: dict[str, Any] = {
        "lake_root": lake.as_uri(),
        "auth_enabled": False,
        "rate_limit_per_minute": 100_000,
        "rate_limit_burst": 100_000,
        "alert_baseline_minutes": 120,
        "alert_recent_minutes": 15,
        "alert_min_events": 5,
        "cache_ttl_s": 0,
    }
    values.update(overrides)
    return ApiSettings(**values)


@pytest.fixture(scope="session")
def make_settings(lake: Path) -> Callable[..., ApiSettings]:
    """Factory of test settings over the fixture lake."""
    return lambda **overrides: api_settings(lake, **overrides)


@pytest.fixture(scope="session")
def client(make_settings: Callable[..., ApiSettings], engine: DuckDBEngine) -> Iterator[TestClient]:
    """The API over the fixture lake (auth off, no caching)."""
    with TestClient(create_app(make_settings(), engine)) as test_client:
        yield test_client


@pytest.fixture(scope="session")
def iso() -> Callable[[dt.datetime], str]:
    """ISO-8601 text of a datetime, for query strings."""
    return lambda value: value.isoformat().replace("+00:00", "Z")


@pytest.fixture(scope="session")
def span() -> tuple[dt.datetime, dt.datetime]:
    """(first, last) instant of the fixture events."""
    return START, END


def score_test_bounds(successes: int, trials: int) -> tuple[float, float]:
    """The shares p a 95 % score test does not reject: the roots in p of
    (p̂ − p)² = z² p (1 − p) / n (the Wilson interval, solved independently of
    signal_api.core.stats: numpy's polynomial roots, z from the standard library)."""
    z = statistics.NormalDist().inv_cdf(0.975)
    n, phat = trials, successes / trials
    roots = np.roots([n + z * z, -(2 * n * phat + z * z), n * phat * phat])
    low, high = sorted(float(r.real) for r in roots)
    return low, high


@pytest.fixture(scope="session")
def wilson_oracle() -> Callable[[int, int], tuple[float, float]]:
    """The Wilson 95 % interval of successes out of trials, as the oracle computes it."""
    return score_test_bounds
