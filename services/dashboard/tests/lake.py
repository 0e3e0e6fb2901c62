"""A small lake of known events ending now, in the libs/common layout, for the browser tests.

The events are the oracle: every figure the dashboard shows must follow from them. They span
the last 90 minutes; postal code TROUBLE_CODE is out of service for its last 20 minutes, so the
API raises an alert for it. Each event belongs to one of two batches, so the partial rows of a
window are split over two files, as the stream processor writes them.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd

from signal_common.lake import PIPELINE_BATCHES
from signal_common.quality import DEFAULT_BANDS
from signal_local.fixture_lake import write_kpi_partials, write_table

OPERATORS = ("Movistar", "Orange", "Vodafone")
NETWORKS = ("2G", "3G", "4G", "5G")
PROVIDERS = ("gps", "network", "fused")
POSTAL = {
    "47001": (41.652, -4.728),
    "47002": (41.655, -4.715),
    "47014": (41.615, -4.707),
    "47008": (41.636, -4.739),
    "47010": (41.662, -4.705),
}
TROUBLE_CODE = "47014"
# A postal code with too few events: the API withholds its figures (#24; min_events 20).
RARE_CODE, RARE_EVENTS, RARE_AT = "47100", 8, (41.600, -4.760)
STATUSES = ("IN_SERVICE", "OUT_OF_SERVICE", "EMERGENCY_ONLY", "POWER_OFF")


def make_events(now: dt.datetime, *, per_minute: int = 60, seed: int = 3) -> pd.DataFrame:
    """Known events over the 90 minutes before `now` (UTC, microsecond times)."""
    rng = np.random.default_rng(seed)
    start = now.replace(second=0, microsecond=0) - dt.timedelta(minutes=90)
    n = per_minute * 90
    span_us = int((now - start).total_seconds() * 1e6) - 1
    times = pd.to_datetime(start) + pd.to_timedelta(np.sort(rng.integers(0, span_us, n)), "us")
    postal = rng.choice(list(POSTAL), n)
    status = rng.choice(STATUSES, n, p=[0.9, 0.04, 0.04, 0.02])
    signal = rng.integers(-125, -55, n)
    trouble = (postal == TROUBLE_CODE) & (times >= pd.Timestamp(now - dt.timedelta(minutes=20)))
    status = np.where(trouble & (rng.random(n) < 0.8), "OUT_OF_SERVICE", status)
    signal = np.where(trouble, signal - 30, signal).clip(-150, -40)
    lat = np.array([POSTAL[p][0] for p in postal]) + rng.normal(0, 0.003, n)
    lon = np.array([POSTAL[p][1] for p in postal]) + rng.normal(0, 0.004, n)
    satellites = rng.integers(4, 20, n).astype(float)
    satellites[rng.random(n) < 0.3] = np.nan
    events = pd.DataFrame(
        {
            "event_time": times,
            "operator": rng.choice(OPERATORS, n),
            "network_type": rng.choice(NETWORKS, n),
            "signal_dbm": signal.astype(np.int64),
            "provider": rng.choice(PROVIDERS, n),
            "gps_precision_m": np.round(rng.uniform(1, 60, n), 1),
            "satellites": satellites,
            "latitude": lat,
            "longitude": lon,
            "postal_code": postal,
            "status": status,
            "batch_id": rng.integers(0, 2, n),
        }
    )
    events["band"] = [
        DEFAULT_BANDS[k].band(s)
        for k, s in zip(events["network_type"], events["signal_dbm"], strict=True)
    ]
    # drawn last, so every event above is what it was before: a few 47010 events move to RARE_CODE
    rare = rng.choice(np.flatnonzero(postal == "47010"), RARE_EVENTS, replace=False)
    events.loc[rare, "postal_code"] = RARE_CODE
    events.loc[rare, "latitude"] = RARE_AT[0]
    events.loc[rare, "longitude"] = RARE_AT[1]
    return events


def write_lake(root: Path, events: pd.DataFrame, *, tag: str = "fixture") -> None:
    """Write the KPI partials of `events` and one pipeline_batches row per batch."""
    write_kpi_partials(root, events, tag=f"{tag}-")
    batch_time = pd.Timestamp(events["event_time"].max()) + pd.Timedelta(seconds=1)
    batches = pd.DataFrame(
        [
            {
                "batch_id": int(b),
                "batch_time": batch_time,
                "rows_in": int((events["batch_id"] == b).sum()) + 3,
                "valid_rows": int((events["batch_id"] == b).sum()),
                "quarantined_rows": 3,
                "quarantined_by_reason": [("invalid_json", 2), ("missing", 1)],
                "duplicates_removed": 5,
                "max_lateness_s": 2.0,
                "max_event_time": events.loc[events["batch_id"] == b, "event_time"].max(),
                "arrival_watermark": batch_time - pd.Timedelta(minutes=10),
                "processing_ms": 900,
                "run_id": f"r-{tag}",
                "late_dropped": 0,
                "millis_behind_latest": 0,
                "source_positions": None,
            }
            for b in sorted(events["batch_id"].unique())
        ]
    )
    for column in ("batch_time", "max_event_time", "arrival_watermark"):
        batches[column] = pd.to_datetime(batches[column], utc=True)
    write_table(root, PIPELINE_BATCHES, batches, "batch_time", tag=f"{tag}-")
