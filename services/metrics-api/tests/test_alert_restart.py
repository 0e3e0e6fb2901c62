"""The evaluator killed mid-cycle (a real `signal-api alerts evaluate` process, SIGKILLed) and
rerun: no transition recorded twice, none lost, and each delivered once.

Two kill points: between writing the cycle's file and committing it (the rename), and after
the commit but before delivery. The expected transitions come from the same cycles run without
interruption on a copy of the lake."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from alert_fixtures import T0, WINDOW, FileRecorder, history, window_events, write_events

from signal_api.adapters.duckdb_engine import DuckDBEngine
from signal_api.alerts.store import LocalAlertStore
from signal_api.settings import ApiSettings
from signal_api.wiring import build_evaluator

SETTLE = dt.timedelta(seconds=60)
HOLE_FIRES = T0 + dt.timedelta(minutes=45) + SETTLE  # third hole window closed
HOLE_RESOLVES = T0 + dt.timedelta(minutes=65) + SETTLE  # third clear window closed

CHILD = """
import sys, time
from pathlib import Path
from alert_fixtures import FileRecorder
from signal_api import main, wiring
from signal_api.alerts import store

at, mode, marker, received = sys.argv[1], sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4])
if mode == "kill-before-commit":
    plain = store.LocalAlertStore.__init__

    def hang(temp):
        marker.write_text(str(temp))
        time.sleep(3600)

    def init(self, root, before_commit=None):
        plain(self, root, before_commit=hang)

    store.LocalAlertStore.__init__ = init
hang_marker = marker if mode == "kill-before-delivery" else None
wiring.build_notifier = lambda settings: FileRecorder(received, hang_marker=hang_marker)
main.main(["alerts", "evaluate", "--at", at])
"""


def lake_with_a_hole(root: Path) -> None:
    rng = np.random.default_rng(9)
    frames = [
        window_events(
            rng,
            code="2000",
            start=T0 + WINDOW * i,
            n=90,
            devices=12,
            weak_share=0.6 if 6 <= i < 9 else 0.0,  # minutes 30-45: three hole windows
        )
        for i in range(18)
    ]
    write_events(root, pd.concat(frames, ignore_index=True))


def child(
    root: Path, at: dt.datetime, mode: str, marker: Path, received: Path
) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(sys.path),
        "SIGNAL_API_LAKE_ROOT": f"file://{root}",
        "SIGNAL_API_AUTH_ENABLED": "false",
        "SIGNAL_API_LOG_JSON": "false",
    }
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, at.isoformat(), mode, str(marker), str(received)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def kill_at_marker(process: subprocess.Popen[str], marker: Path) -> None:
    """Wait until the child reached its kill point, then SIGKILL it."""
    deadline = time.monotonic() + 300  # a hang guard, not a timing assertion
    while not marker.exists():
        if process.poll() is not None:
            raise AssertionError(f"child ended before its kill point: {process.communicate()}")
        assert time.monotonic() < deadline, "child never reached its kill point"
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL


def finish(process: subprocess.Popen[str]) -> None:
    _, err = process.communicate(timeout=300)
    assert process.returncode == 0, err


def uninterrupted(root: Path, moments: list[dt.datetime]) -> list[dict[str, object]]:
    settings = ApiSettings(lake_root=f"file://{root}", auth_enabled=False)
    engine = DuckDBEngine(settings.lake_root)
    recorder = FileRecorder(root / "received.jsonl")
    try:
        evaluator = build_evaluator(settings, engine, notifier=recorder)
        for moment in moments:
            evaluator.evaluate(moment)
    finally:
        engine.close()
    return history(LocalAlertStore(settings.lake_root), T0, moments[-1])


def comparable(rows: list[dict[str, object]]) -> list[tuple[object, ...]]:
    return sorted(
        (r["evaluated_at"], r["alert_id"], r["previous"], r["state"], r["since"], r["correction"])
        for r in rows
    )


def test_killed_evaluator_neither_duplicates_nor_loses(tmp_path: Path) -> None:
    lake, reference = tmp_path / "lake", tmp_path / "reference"
    lake_with_a_hole(lake)
    shutil.copytree(lake, reference)
    first = T0 + dt.timedelta(minutes=36)  # the hole is pending
    later = HOLE_RESOLVES + dt.timedelta(minutes=1)
    want = comparable(uninterrupted(reference, [first, HOLE_FIRES, HOLE_RESOLVES, later]))
    assert [(w[3], w[5]) for w in want if w[1] == "coverage_hole:postal_code:2000"] == [
        ("pending", False),
        ("firing", False),
        ("resolved", False),
    ]
    received = tmp_path / "received.jsonl"
    store = LocalAlertStore(f"file://{lake}")

    finish(child(lake, first, "normal", tmp_path / "m0", received))
    # 1. killed between writing the firing cycle's file and renaming it into place
    killed = child(lake, HOLE_FIRES, "kill-before-commit", tmp_path / "m1", received)
    kill_at_marker(killed, tmp_path / "m1")
    assert store.read(HOLE_FIRES) is None  # not committed: readers see nothing of it
    assert Path((tmp_path / "m1").read_text()).exists()  # its temporary file is left
    finish(child(lake, HOLE_FIRES, "normal", tmp_path / "m2", received))
    # 2. killed after committing the resolving cycle, before delivering it
    killed = child(lake, HOLE_RESOLVES, "kill-before-delivery", tmp_path / "m3", received)
    kill_at_marker(killed, tmp_path / "m3")
    assert store.read(HOLE_RESOLVES) is not None
    resolved_key = next(
        r["transition_key"] for r in history(store, T0, later) if r["state"] == "resolved"
    )
    assert resolved_key not in FileRecorder(received).accepted()
    # the rerun of the same evaluation time only delivers; the next cycle would too
    finish(child(lake, HOLE_RESOLVES, "normal", tmp_path / "m4", received))
    finish(child(lake, later, "normal", tmp_path / "m5", received))

    got = history(store, T0, later)
    assert comparable(got) == want  # none lost, none twice, none changed
    keys = FileRecorder(received).accepted()
    assert len(keys) == len(set(keys))  # each transition delivered once
    assert set(keys) == {r["transition_key"] for r in got if r["state"] in ("firing", "resolved")}
    assert resolved_key in keys
