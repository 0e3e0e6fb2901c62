"""Helpers the dashboard tests import by name (a `conftest` module cannot be imported
unambiguously: every test directory has one)."""

from __future__ import annotations

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
