"""`signal-dashboard` as ECS runs it: a real `python -m signal_dashboard.main` process with the
cookie secret the Services stack gives every replica (SIGNAL_DASHBOARD_COOKIE_SECRET)."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from signal_dashboard.main import exit_status, streamlit_environment, streamlit_flags
from signal_dashboard.settings import DashboardSettings
from signal_local.endpoints import free_port, start_python_service

SECRET = "cookie-secret-of-every-replica-0123456789abcdef"


def _command_lines(pid: int) -> list[str]:
    """The command line of `pid` and of every process below it (Linux /proc)."""
    lines, todo = [], [pid]
    while todo:
        current = todo.pop()
        proc = Path(f"/proc/{current}")
        try:
            lines.append((proc / "cmdline").read_bytes().replace(b"\0", b" ").decode())
            for task in (proc / "task").iterdir():
                children = (task / "children").read_text().split()
                todo.extend(int(child) for child in children)
        except (FileNotFoundError, ProcessLookupError):
            continue
    return lines


def test_starts_with_the_cookie_secret_and_keeps_it_off_the_command_line(
    tmp_path: Path,
) -> None:
    port = free_port()
    proc = start_python_service(
        "dashboard",
        "signal_dashboard.main",
        port=port,
        env={
            "SIGNAL_DASHBOARD_PORT": str(port),
            "SIGNAL_DASHBOARD_COOKIE_SECRET": SECRET,
            "SIGNAL_DASHBOARD_API_URL": "http://127.0.0.1:9",  # never called by the health check
        },
        log_dir=tmp_path,
        probe_path="/_stcore/health",
    )
    try:
        with urllib.request.urlopen(f"{proc.url}/_stcore/health", timeout=5) as response:
            assert response.status == 200
            assert response.read() == b"ok"
        command_lines = _command_lines(proc.pid)
        assert any("signal_dashboard.main" in line for line in command_lines)
        assert not [line for line in command_lines if SECRET in line]
    finally:
        proc.stop()


def test_the_secret_goes_to_streamlit_through_its_environment_variable() -> None:
    settings = DashboardSettings(cookie_secret=SECRET)
    assert streamlit_environment(settings) == {"STREAMLIT_SERVER_COOKIE_SECRET": SECRET}
    assert not [flag for flag in streamlit_flags(settings) if SECRET in flag]
    assert streamlit_environment(DashboardSettings()) == {}


@pytest.mark.parametrize(("code", "status"), [(None, 0), (0, 0), (3, 3), ("refused", 1)])
def test_exit_status_of_every_system_exit_code(
    code: object, status: int, capsys: pytest.CaptureFixture[str]
) -> None:
    assert exit_status(code) == status
    assert capsys.readouterr().err == ("refused\n" if code == "refused" else "")


def test_a_setting_the_dashboard_refuses_is_one_line_and_status_2() -> None:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(p for p in sys.path if p),
        "SIGNAL_DASHBOARD_API_URL": "ftp://nowhere",
    }
    done = subprocess.run(
        [sys.executable, "-m", "signal_dashboard.main"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.startswith("signal-dashboard: invalid setting api_url:")
