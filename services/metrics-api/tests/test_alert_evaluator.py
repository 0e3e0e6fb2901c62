"""The alert evaluator over a real lake (DuckDB engine, Parquet in a tmp dir) against a pandas
oracle of the rules and the lifecycle: coverage holes (including one device, and persistence),
out-of-service, signal drop, hysteresis and late data recorded as a correction."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from alert_fixtures import (
    T0,
    WINDOW,
    history,
    oracle_breaches,
    oracle_transitions,
    window_events,
    write_events,
)

from signal_api.adapters.duckdb_engine import DuckDBEngine
from signal_api.alerts.lifecycle import AlertState, replay
from signal_api.alerts.model import Transition
from signal_api.alerts.store import LocalAlertStore
from signal_api.settings import ApiSettings
from signal_api.wiring import build_evaluator

HOURS = 2
ENDS = [T0 + WINDOW * (i + 1) for i in range(HOURS * 12)]
SETTLE = dt.timedelta(seconds=60)


class Recorder:
    """A real in-process receiver: keeps what it was handed, once per transition key."""

    def __init__(self) -> None:
        self.received: list[Transition] = []

    def deliver(self, transitions: Sequence[Transition]) -> int:
        seen = {t.key for t in self.received}
        fresh = [t for t in transitions if t.key not in seen]
        self.received += fresh
        return len(fresh)


def scenario(seed: int = 3) -> pd.DataFrame:
    """Two hours of 4G events in six postal codes, each with one story."""
    rng = np.random.default_rng(seed)
    frames = []
    for i in range(HOURS * 12):
        start = T0 + WINDOW * i
        minute = i * 5
        # 1000: healthy, 20 devices
        frames.append(window_events(rng, code="1000", start=start, n=80, devices=20))
        # 2000: a hole from minute 30 to 50 (4 windows), then healthy again
        hole = 30 <= minute < 50
        frames.append(
            window_events(
                rng, code="2000", start=start, n=90, devices=12, weak_share=0.6 if hole else 0.02
            )
        )
        # 3000: weak all along but from one device only: never a hole
        frames.append(
            window_events(rng, code="3000", start=start, n=120, devices=1, weak_share=0.8)
        )
        # 4000: a hole of two windows only (T = 3): pending, then inactive
        short = minute in (60, 65)
        frames.append(
            window_events(
                rng, code="4000", start=start, n=70, devices=8, weak_share=0.7 if short else 0.0
            )
        )
        # 5000: out of service from minute 70 to 85, few events otherwise unknown at the start
        frames.append(
            window_events(
                rng,
                code="5000",
                start=start,
                n=40,
                devices=6,
                out_of_service_share=0.6 if 70 <= minute < 85 else 0.0,
            )
        )
        # 6000: too few events for any rule (unknown throughout): no state at all
        frames.append(window_events(rng, code="6000", start=start, n=8, devices=8, weak_share=1.0))
    events = pd.concat(frames, ignore_index=True)
    events["batch_id"] = (
        (events["event_time"] - pd.Timestamp(T0)).dt.total_seconds() // 600
    ).astype("int64")
    return events


def settings_for(root: Path) -> ApiSettings:
    return ApiSettings(lake_root=f"file://{root}", auth_enabled=False, quality_band_overrides={})


def run_cycles(root: Path, moments: Sequence[dt.datetime], recorder: Recorder) -> None:
    settings = settings_for(root)
    engine = DuckDBEngine(settings.lake_root)
    try:
        evaluator = build_evaluator(
            settings, engine, store=LocalAlertStore(settings.lake_root), notifier=recorder
        )
        for moment in moments:
            evaluator.evaluate(moment)
    finally:
        engine.close()


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame, Recorder]:
    root = tmp_path_factory.mktemp("alert-lake")
    events = scenario()
    write_events(root, events)
    recorder = Recorder()
    # a cycle every minute for the first half hour, then one per window (each closed window seen)
    moments = [T0 + dt.timedelta(minutes=m) for m in range(1, 30)]
    moments += [end + SETTLE for end in ENDS if end + SETTLE > moments[-1]]
    run_cycles(root, moments, recorder)
    return root, events, recorder


def expected(events: pd.DataFrame) -> set[tuple[str, str, str, dt.datetime]]:
    fire_after = {"coverage_hole": 3, "out_of_service": 1, "signal_drop": 1}
    found = set()
    for (rule, code), verdicts in oracle_breaches(events, ENDS).items():
        for previous, state, since in oracle_transitions(
            verdicts, ENDS, fire_after=fire_after[rule]
        ):
            found.add((f"{rule}:postal_code:{code}", previous, state, since))
    return found


def test_transitions_match_the_oracle(evaluated: tuple[Path, pd.DataFrame, Recorder]) -> None:
    root, events, _ = evaluated
    rows = history(LocalAlertStore(f"file://{root}"), T0, ENDS[-1] + SETTLE)
    got = {(r["alert_id"], r["previous"], r["state"], r["since"]) for r in rows}
    want = expected(events)
    assert got == want
    assert len(rows) == len(got)  # no transition recorded twice over 50 cycles
    assert not any(r["correction"] for r in rows)  # no late data: no correction
    # the stories the scenario tells, so the oracle cannot be vacuous
    ids = {(a, s) for a, _, s, _ in want}
    assert ("coverage_hole:postal_code:2000", "firing") in ids
    assert ("coverage_hole:postal_code:2000", "resolved") in ids
    assert ("coverage_hole:postal_code:4000", "pending") in ids
    assert ("coverage_hole:postal_code:4000", "firing") not in ids  # 2 windows < T = 3
    assert not any(a.endswith(":3000") and a.startswith("coverage_hole") for a, _ in ids)
    assert ("out_of_service:postal_code:5000", "firing") in ids
    assert not any(a.endswith(":6000") for a, _ in ids)


def test_hole_fires_after_t_windows(evaluated: tuple[Path, pd.DataFrame, Recorder]) -> None:
    root, _, _ = evaluated
    rows = history(LocalAlertStore(f"file://{root}"), T0, ENDS[-1] + SETTLE)
    hole = {r["state"]: r for r in rows if r["alert_id"] == "coverage_hole:postal_code:2000"}
    since = T0 + dt.timedelta(minutes=30)
    assert hole["pending"]["since"] == since
    assert hole["pending"]["window_end"] == since + WINDOW
    # third hole window in a row: it fires at the end of the window that starts at minute 40
    assert hole["firing"]["window_end"] == since + 3 * WINDOW
    # last hole window ends at minute 50; three clear windows later it resolves (hysteresis)
    assert hole["resolved"]["window_end"] == T0 + dt.timedelta(minutes=50) + 3 * WINDOW


def test_delivered_once_per_transition(evaluated: tuple[Path, pd.DataFrame, Recorder]) -> None:
    root, _, recorder = evaluated
    rows = history(LocalAlertStore(f"file://{root}"), T0, ENDS[-1] + SETTLE)
    notified = {r["transition_key"] for r in rows if r["state"] in ("firing", "resolved")}
    assert [t.key for t in recorder.received] == sorted(
        {t.key for t in recorder.received}, key=[t.key for t in recorder.received].index
    )
    assert {t.key for t in recorder.received} == notified
    assert all(t.state in ("firing", "resolved") for t in recorder.received)


def test_hysteresis_flapping_area_pages_once() -> None:
    """breach x3 (fires), then clear/breach flapping never 3 clear in a row, then 3 clear."""
    verdicts = ["breach"] * 3 + ["clear", "breach", "clear", "clear", "breach"] * 3
    verdicts += ["clear", "clear", "clear"]
    ends = [T0 + WINDOW * (i + 1) for i in range(len(verdicts))]
    start = AlertState(
        "coverage_hole:postal_code:1", "coverage_hole", "postal_code", "1", "inactive", T0
    )
    _, steps = replay(
        start,
        [(e, v, {}) for e, v in zip(ends, verdicts, strict=True)],  # type: ignore[misc]
        window=WINDOW,
        fire_after=3,
        resolve_after=3,
    )
    assert [(s.previous, s.state) for s in steps] == [
        ("inactive", "pending"),
        ("pending", "firing"),
        ("firing", "resolved"),
    ]
    assert steps[-1].window_end == ends[-1]
    assert {s.since for s in steps} == {T0}


def test_late_event_crossing_the_threshold_is_a_correction(tmp_path: Path) -> None:
    """A window judged clear (25 % weak) becomes a hole when late weak events arrive: the
    re-evaluation fires the alert as a correction; what was recorded stays as it was."""
    rng = np.random.default_rng(5)
    frames = []
    for i in range(12):
        start = T0 + WINDOW * i
        share = {4: 0.6, 5: 0.6, 6: 0.25}.get(i, 0.0)
        frames.append(
            window_events(rng, code="7000", start=start, n=100, devices=10, weak_share=share)
        )
    events = pd.concat(frames, ignore_index=True)
    write_events(tmp_path, events)
    recorder = Recorder()
    window6_end = T0 + 7 * WINDOW
    before = [window6_end + SETTLE + dt.timedelta(minutes=m) for m in range(0, 6)]
    run_cycles(tmp_path, before, recorder)
    store = LocalAlertStore(f"file://{tmp_path}")
    first = history(store, T0, before[-1])
    assert {(r["previous"], r["state"]) for r in first if "coverage_hole" in r["alert_id"]} == {
        ("inactive", "pending"),
        ("pending", "inactive"),
    }
    files_before = sorted(p.name for p in (tmp_path / "alert_events").rglob("*.parquet"))
    # late: 40 weak events from the same devices in window 6 (a new micro-batch file)
    late = window_events(
        rng, code="7000", start=T0 + 6 * WINDOW, n=40, devices=10, weak_share=1.0, batch=99
    )
    write_events(tmp_path, late, tag="late-")
    after = before[-1] + dt.timedelta(minutes=1)
    run_cycles(tmp_path, [after], recorder)
    # the oracle over every event now says: three hole windows, firing since window 4
    all_events = pd.concat([events, late], ignore_index=True)
    verdicts = oracle_breaches(all_events, [T0 + WINDOW * (i + 1) for i in range(12)])
    assert verdicts[("coverage_hole", "7000")][4:7] == ["breach"] * 3
    rows = history(store, T0, after)
    new = [r for r in rows if r["evaluated_at"] == after and "coverage_hole" in r["alert_id"]]
    assert [(r["previous"], r["state"], r["correction"]) for r in new] == [
        ("pending", "firing", True)
    ]
    assert new[0]["since"] == T0 + 4 * WINDOW
    assert new[0]["window_end"] == window6_end  # the past window it re-judged
    # nothing recorded before was rewritten: the earlier files are byte-for-byte there
    assert set(files_before) <= {p.name for p in (tmp_path / "alert_events").rglob("*.parquet")}
    assert [r for r in rows if r["evaluated_at"] < after] == first
    assert any(t.correction and t.state == "firing" for t in recorder.received)


def drop_oracle(
    events: pd.DataFrame, ends: Sequence[dt.datetime], *, min_baseline: int
) -> dict[str, list[str]]:
    """Per postal code, signal_drop's verdict of each window end from the raw events (pandas),
    the thresholds written out: >= 20 events over the last 15 minutes whose average signal is
    >= 10 dB below that of the 24 h before them, which hold >= `min_baseline` events."""
    out: dict[str, list[str]] = {}
    for code, g in events.groupby("postal_code"):
        verdicts = []
        for end in ends:
            lo = pd.Timestamp(end) - pd.Timedelta(minutes=15)
            recent = g[(g.event_time >= lo) & (g.event_time < pd.Timestamp(end))]
            base = g[(g.event_time >= lo - pd.Timedelta(hours=24)) & (g.event_time < lo)]
            if len(recent) < 20 or len(base) < max(min_baseline, 1):
                verdicts.append("unknown")
            else:
                drop = base.signal_dbm.mean() - recent.signal_dbm.mean()
                verdicts.append("breach" if drop >= 10 else "clear")
        out[str(code)] = verdicts
    return out


def test_a_drop_against_a_thin_baseline_does_not_fire(tmp_path: Path) -> None:
    """A fresh stack: 8100's first events (30, in T0's window) are its whole baseline when its
    signal drops 18 dB; 8200 has two hours before the same drop. Only 8200's drop fires; with no
    minimum of baseline events (0.4's rule), the oracle says 8100's would have fired too."""
    rng = np.random.default_rng(12)
    normal, dropped = (-90, -70), (-108, -88)  # averages -80.5 and -98.5 dBm
    frames = [window_events(rng, code="8100", start=T0, n=30, devices=10, signal_ok=normal)]
    for i in range(-24, 10):
        start = T0 + WINDOW * i
        if i >= 1:
            frames.append(
                window_events(rng, code="8100", start=start, n=60, devices=10, signal_ok=dropped)
            )
        frames.append(
            window_events(
                rng,
                code="8200",
                start=start,
                n=60,
                devices=10,
                signal_ok=dropped if i >= 1 else normal,
            )
        )
    events = pd.concat(frames, ignore_index=True)
    # a micro-batch per 10 minutes, numbered from the first (commit_seq = batch_id + 1 > 0)
    first = events["event_time"].min()
    events["batch_id"] = ((events["event_time"] - first).dt.total_seconds() // 600).astype("int64")
    write_events(tmp_path, events)
    recorder = Recorder()
    moments = [T0 + SETTLE + WINDOW * i for i in range(10)]
    run_cycles(tmp_path, moments, recorder)

    # the windows those cycles judged: the first looks back one horizon (60 minutes)
    ends = [T0 - dt.timedelta(minutes=55) + WINDOW * i for i in range(21)]
    assert ends[-1] == T0 + 9 * WINDOW
    want = {
        (f"signal_drop:postal_code:{code}", previous, state, since)
        for code, verdicts in drop_oracle(events, ends, min_baseline=100).items()
        for previous, state, since in oracle_transitions(verdicts, ends, fire_after=1)
    }
    rows = history(LocalAlertStore(f"file://{tmp_path}"), T0 - WINDOW, moments[-1])
    got = {
        (r["alert_id"], r["previous"], r["state"], r["since"])
        for r in rows
        if r["rule"] == "signal_drop"
    }
    assert got == want
    # the stories, so neither side can be vacuous: 8200 fires once the last 15 minutes are
    # 10 dB down (the window from T0 + 10 min); 8100's thin baseline leaves its drop unjudged
    # until the baseline holds 100 events, and by then the baseline holds the drop itself
    assert ("signal_drop:postal_code:8200", "inactive", "firing", T0 + 2 * WINDOW) in got
    assert not any(a.endswith(":8100") for a, _, _, _ in got)
    thin = drop_oracle(events, ends, min_baseline=0)["8100"]
    assert "breach" in thin  # what the rule without min_baseline_events would have fired on
    assert [t.alert_id for t in recorder.received if t.rule == "signal_drop"] == [
        "signal_drop:postal_code:8200"
    ]
