"""Test support for the alert tests: write `events` and KPI partials from known events, and an
independent pandas oracle of the three rules and the lifecycle."""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from signal_common.lake import EVENTS
from signal_common.quality import DEFAULT_BANDS
from signal_testing.fixture_lake import write_kpi_partials, write_table

T0 = dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.UTC)
WINDOW = dt.timedelta(minutes=5)
_DEFAULTS = {"string": "x", "int": 0, "bigint": 0, "double": 0.0, "boolean": False}


def window_events(
    rng: np.random.Generator,
    *,
    code: str,
    start: dt.datetime,
    n: int,
    devices: int,
    weak_share: float = 0.0,
    out_of_service_share: float = 0.0,
    batch: int = 0,
    signal_ok: tuple[int, int] = (-95, -70),
) -> pd.DataFrame:
    """`n` 4G events of one postal code in the 5-minute window starting at `start`."""
    weak = rng.random(n) < weak_share
    signal = np.where(weak, rng.integers(-125, -110, n), rng.integers(*signal_ok, n))
    oos = rng.random(n) < out_of_service_share
    offsets = rng.integers(0, int(WINDOW.total_seconds() * 1e6), n)
    return pd.DataFrame(
        {
            "event_time": pd.Timestamp(start) + pd.to_timedelta(np.sort(offsets), unit="us"),
            "device_id": [f"{code}-d{i % devices}" for i in range(n)],
            "operator": "Orange",
            "network_type": "4G",
            "signal_dbm": signal.astype(np.int64),
            "provider": "gps",
            "gps_precision_m": 5.0,
            "satellites": 8.0,
            "latitude": 50.8,
            "longitude": 4.3,
            "postal_code": code,
            "status": np.where(oos, "OUT_OF_SERVICE", "IN_SERVICE"),
            "batch_id": batch,
        }
    )


def write_events(root: Path, events: pd.DataFrame, *, tag: str = "") -> None:
    """The `events` table and every KPI partial of `events`, as the processor lays them out."""
    events = events.assign(
        band=[
            DEFAULT_BANDS[k].band(int(s))
            for k, s in zip(events["network_type"], events["signal_dbm"], strict=True)
        ]
    )
    full = events.copy()
    for c in EVENTS.columns:
        if c.name in full.columns or c.name in ("commit_seq", "compacted"):
            continue
        if c.hive_type == "timestamp":
            full[c.name] = full["event_time"]
        elif c.nullable:
            full[c.name] = None
        else:
            full[c.name] = _DEFAULTS[c.hive_type]
    write_table(root, EVENTS, full, "event_time", tag=tag)
    write_kpi_partials(root, events, tag=tag)


def oracle_breaches(
    events: pd.DataFrame, ends: Sequence[dt.datetime]
) -> dict[tuple[str, str], list[str]]:
    """Per (rule, postal code), the verdict of each window end, from the raw events (pandas),
    with the default thresholds written out here: 4G weak at <= -110 dBm; hole >= 30 % of >= 50
    events from >= 5 devices; out of service >= 20 % of >= 20 events over the last 15 minutes;
    signal drop >= 10 dB below the 24 h before those 15 minutes."""
    ev = events.assign(weak=events["signal_dbm"] <= -110, oos=events["status"] == "OUT_OF_SERVICE")
    out: dict[tuple[str, str], list[str]] = {}
    for code, g in ev.groupby("postal_code"):
        hole, oos, drop = [], [], []
        for end in ends:
            e = pd.Timestamp(end)
            w = g[(g.event_time >= e - pd.Timedelta(minutes=5)) & (g.event_time < e)]
            if len(w) < 50:
                hole.append("unknown")
            elif w.device_id.nunique() < 5:
                hole.append("clear")
            else:
                hole.append("breach" if w.weak.mean() >= 0.3 else "clear")
            r = g[(g.event_time >= e - pd.Timedelta(minutes=15)) & (g.event_time < e)]
            if len(r) < 20:
                oos.append("unknown")
                drop.append("unknown")
                continue
            oos.append("breach" if r.oos.mean() >= 0.2 else "clear")
            lo = e - pd.Timedelta(minutes=15)
            b = g[(g.event_time >= lo - pd.Timedelta(hours=24)) & (g.event_time < lo)]
            if b.empty:
                drop.append("unknown")
            else:
                drop.append(
                    "breach" if b.signal_dbm.mean() - r.signal_dbm.mean() >= 10 else "clear"
                )
        out[("coverage_hole", code)] = hole
        out[("out_of_service", code)] = oos
        out[("signal_drop", code)] = drop
    return out


def oracle_transitions(
    verdicts: Sequence[str],
    ends: Sequence[dt.datetime],
    *,
    fire_after: int,
    resolve_after: int = 3,
) -> list[tuple[str, str, dt.datetime]]:
    """(previous, state, since) of each transition of one alert, written out independently."""
    found: list[tuple[str, str, dt.datetime]] = []
    state, run, clears, since = "inactive", 0, 0, None
    for verdict, end in zip(verdicts, ends, strict=True):
        if verdict == "unknown":
            continue
        if state in ("inactive", "resolved"):
            if verdict == "breach":
                since, run = end - WINDOW, 1
                new = "firing" if fire_after == 1 else "pending"
                found.append((state, new, since))
                state, clears = new, 0
            else:
                state = "inactive"
        elif state == "pending":
            if verdict == "breach":
                run += 1
                if run == fire_after:
                    found.append(("pending", "firing", since))
                    state, clears = "firing", 0
            else:
                found.append(("pending", "inactive", since))
                state = "inactive"
        else:
            clears = 0 if verdict == "breach" else clears + 1
            if clears == resolve_after:
                found.append(("firing", "resolved", since))
                state = "resolved"
    return found


def history(store: Any, first: dt.datetime, last: dt.datetime) -> list[dict[str, Any]]:
    """Every transition row of the committed cycles in [first, last]."""
    from signal_api.alerts.store import cycles_between

    rows: list[dict[str, Any]] = []
    for moment in cycles_between(store, first, last):
        rows += [r for r in store.read(moment).to_pylist() if r["kind"] == "transition"]
    return rows


class FileRecorder:
    """A receiver that persists what it accepted (one JSON line per transition key) and
    deduplicates by key across processes, as the delivery layer promises to. With
    `hang_marker`, it writes the marker and hangs before accepting anything new (a test kills
    the process there: after the cycle's commit, before its delivery)."""

    def __init__(self, path: Path, *, hang_marker: Path | None = None) -> None:
        self.path = path
        self.hang_marker = hang_marker

    def accepted(self) -> list[str]:
        if not self.path.exists():
            return []
        return [json.loads(line)["key"] for line in self.path.read_text().splitlines()]

    def deliver(self, transitions: Sequence[Any]) -> int:
        seen = set(self.accepted())
        fresh = [t for t in transitions if t.key not in seen]
        if fresh and self.hang_marker is not None:
            self.hang_marker.write_text("delivering")
            time.sleep(3600)
        with open(self.path, "a") as handle:
            for t in fresh:
                handle.write(json.dumps({"key": t.key, "correction": t.correction}) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        return len(fresh)
