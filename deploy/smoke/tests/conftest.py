"""Shared by the tests: the local endpoints' fixtures, and running the command as a user does
(a subprocess of this interpreter)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable

import pytest


def smoke(
    argv: list[str], *, timeout: float = 120
) -> tuple[subprocess.CompletedProcess[str], float]:
    """Run `python -m signal_smoke.cli argv…`; its result and its wall time (printed for -s)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "signal_smoke.cli", *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    took = time.monotonic() - started
    print(f"$ signal-smoke {' '.join(argv)}\n{result.stdout}{result.stderr}", flush=True)
    return result, took


def line_of(output: str, check: str) -> str:
    """The one printed line of a check."""
    lines = [line for line in output.splitlines() if line[6:].startswith(check)]
    assert len(lines) == 1, output
    return lines[0]


pytest_plugins = ["signal_testing.pytest_plugin"]

Smoke = Callable[..., tuple[subprocess.CompletedProcess[str], float]]


@pytest.fixture
def run_smoke() -> Smoke:
    """`run_smoke(argv, timeout=…)`: the command's result and wall time."""
    return smoke


@pytest.fixture
def check_line() -> Callable[[str, str], str]:
    """`check_line(stdout, check)`: the one printed line of a check."""
    return line_of
