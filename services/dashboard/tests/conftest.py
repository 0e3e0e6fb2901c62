"""Fixtures of the dashboard tests: a fixture lake of known events ending now, the real metrics
API over it, and the dashboard server reading that API (both on free 127.0.0.1 ports)."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from dashboard_support import API_KEY, evaluate_alerts_once
from lake import make_events, write_lake

from signal_local.endpoints import ManagedProcess, free_port, start_python_service

# Screenshots land in the repository's dist/ (Pants runs tests in a sandbox that is discarded;
# SIGNAL_STREAM_ROOT names the repository root there).
ARTIFACTS = Path(
    os.environ.get("SIGNAL_TEST_ARTIFACTS")
    or Path(os.environ.get("SIGNAL_STREAM_ROOT", ".")) / "dist/test-artifacts/dashboard"
)


@pytest.fixture(scope="session")
def fixture_now() -> dt.datetime:
    """The fixture lake's "now" (its events end here)."""
    return dt.datetime.now(dt.UTC)


@pytest.fixture(scope="session")
def events(fixture_now: dt.datetime) -> pd.DataFrame:
    """The known events (the oracle)."""
    return make_events(fixture_now)


@pytest.fixture(scope="session")
def lake_dir(tmp_path_factory: pytest.TempPathFactory, events: pd.DataFrame) -> Path:
    root = tmp_path_factory.mktemp("lake")
    write_lake(root, events)
    # one alert-evaluator cycle, so the Alerts page has the evaluator's state to show
    evaluate_alerts_once(root, tmp_path_factory.mktemp("alert-delivery"))
    return root


@pytest.fixture(scope="session")
def api(lake_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ManagedProcess]:
    """The real metrics API (DuckDB over the fixture lake), auth on with one known key."""
    port = free_port()
    key_hash = hashlib.sha256(API_KEY.encode()).hexdigest()
    proc = start_python_service(
        "metrics-api",
        "signal_api.main",
        port=port,
        env={
            "SIGNAL_API_LAKE_ROOT": f"file://{lake_dir}",
            "SIGNAL_API_PORT": str(port),
            "SIGNAL_API_API_KEYS_SHA256": f'["dashboard:{key_hash}"]',
            "SIGNAL_API_CACHE_TTL_S": "1",
            "SIGNAL_API_LOG_JSON": "false",
        },
        log_dir=tmp_path_factory.mktemp("api-logs"),
        probe_path="/healthz",
    )
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
