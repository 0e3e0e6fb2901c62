"""A small lake of known events ending now, in the libs/common layout, for the browser tests.

The events are the oracle: every figure the dashboard shows must follow from them. They span
the last 90 minutes; postal code TROUBLE_CODE is out of service for its last 20 minutes, so the
API raises an alert for it. Each event belongs to one of two batches, so the partial rows of a
window are split over two files, as the stream processor writes them.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd

from signal_testing import fixture_lake
from signal_testing.fixture_lake import Outage, RarePlace

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


# The draws in the order this fixture first made them, so its seed keeps giving its events.
ORDER = (
    "event_time",
    "postal_code",
    "status",
    "signal_dbm",
    "outage",
    "latitude",
    "longitude",
    "satellites",
    "satellites_missing",
    "operator",
    "network_type",
    "provider",
    "gps_precision_m",
    "batch_id",
    "rare",
)


def make_events(now: dt.datetime, *, per_minute: int = 60, seed: int = 3) -> pd.DataFrame:
    """Known events over the 90 minutes before `now` (UTC, microsecond times)."""
    start = now.replace(second=0, microsecond=0) - dt.timedelta(minutes=90)
    return fixture_lake.make_events(
        per_minute * 90,
        start=start,
        until=now - dt.timedelta(microseconds=1),
        seed=seed,
        order=ORDER,
        operators=OPERATORS,
        networks=NETWORKS,
        providers=PROVIDERS,
        postal_codes=POSTAL,
        statuses=STATUSES,
        status_weights=[0.9, 0.04, 0.04, 0.02],
        precision_decimals=1,
        satellites=(4, 20),
        satellites_missing=0.3,
        jitter_deg=(0.003, 0.004),
        batches=2,
        device_ids=False,
        cells=None,
        outage=Outage(TROUBLE_CODE, now - dt.timedelta(minutes=20), 0.8, 30, (-150, -40)),
        # a few 47010 events move to RARE_CODE, drawn last so every other event stays as it was
        rare=RarePlace(RARE_CODE, RARE_EVENTS, "47010", RARE_AT),
    )


def write_lake(root: Path, events: pd.DataFrame, *, tag: str = "fixture") -> None:
    """Write the KPI partials of `events` and one pipeline_batches row per batch."""
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
    fixture_lake.write_lake(root, events, batches, tag=f"{tag}-")
