"""Helpers the dashboard tests import by name (a `conftest` module cannot be imported
unambiguously: every test directory has one)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from lake import OPERATORS

from signal_local.endpoints import ManagedProcess, free_port, start_python_service

API_KEY = "dashboard-test-key"
OPERATORS_IN_LAKE = OPERATORS


def start_dashboard(
    api_url: str, log_dir: Path, *, refresh_s: float = 3.0, extra: dict[str, str] | None = None
) -> ManagedProcess:
    """The dashboard server on a free port, reading `api_url`."""
    port = free_port()
    return start_python_service(
        "dashboard",
        "signal_dashboard.main",
        port=port,
        env={
            "SIGNAL_DASHBOARD_API_URL": api_url,
            "SIGNAL_DASHBOARD_API_KEY": API_KEY,
            "SIGNAL_DASHBOARD_PORT": str(port),
            "SIGNAL_DASHBOARD_REFRESH_S": str(refresh_s),
            **(extra or {}),
        },
        log_dir=log_dir,
        probe_path="/_stcore/health",
    )


def evaluate_alerts_once(lake_dir: Path, state_dir: Path) -> None:
    """One cycle of the real alert evaluator (`signal-api alerts evaluate --once`, #25) over
    the lake, now; no notification destination (it logs transitions), delivery state in
    `state_dir`."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(p for p in sys.path if p),
        "SIGNAL_API_LAKE_ROOT": f"file://{lake_dir}",
        "SIGNAL_API_LOG_JSON": "false",
        "SIGNAL_ALERTS_STATE_DIR": str(state_dir),
    }
    subprocess.run(
        [sys.executable, "-m", "signal_api.main", "alerts", "evaluate", "--once"],
        env=env,
        check=True,
        timeout=120,
        capture_output=True,
    )
