"""Marked synthetic events: valid by the shared schema, findable by their run id and minute.

Each run puts `count` events dated inside one minute (the marker window) days in the past, far
behind any live or late traffic, the minute and the events' signal level both chosen by the run
id. The API's /v1/summary reports any complete minute (`at`), so the marker window's totals are
compared with its totals before the send: they must grow by exactly `count` events and exactly
`count × signal_dbm` of signal, which another run's or anyone else's events would not match. Every
event also carries the run in `device_id` and `event_id` and the dedicated operator
`signal-smoke`, so they can be found (or excluded) in the lake.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

from signal_common.schema import event_to_json, validate_event

MARKER_OPERATOR = "signal-smoke"
MARKER_POSTAL_CODE = "00000"
# the marker minute lies in [age, age + spread) minutes ago and the level in [-129, -30] dBm,
# both from the run id, so two runs rarely share either
MARKER_SPREAD_MINUTES = 1440
MARKER_SIGNAL_LEVELS = 100


@dataclass(frozen=True)
class MarkerRecord:
    """One stream record as the producer writes it: the event's canonical JSON, UTF-8, keyed
    by its device id."""

    data: bytes
    partition_key: str


@dataclass(frozen=True)
class MarkerRun:
    """A run's marked events and where they must show up."""

    run_id: str
    window_start: dt.datetime
    signal_dbm: int
    records: tuple[MarkerRecord, ...]

    @property
    def count(self) -> int:
        return len(self.records)

    @property
    def signal_sum(self) -> int:
        return self.count * self.signal_dbm

    @property
    def window_end(self) -> dt.datetime:
        return self.window_start + dt.timedelta(minutes=1)


def floor_minute(moment: dt.datetime) -> dt.datetime:
    """The start of the UTC minute holding `moment`."""
    return moment.astimezone(dt.UTC).replace(second=0, microsecond=0)


def _run_number(run_id: str) -> int:
    return int(hashlib.sha256(run_id.encode("utf-8")).hexdigest()[:12], 16)


def marker_window(
    now: dt.datetime, run_id: str, *, age_minutes: int, spread_minutes: int = MARKER_SPREAD_MINUTES
) -> dt.datetime:
    """The minute run `run_id` dates its events in: `age_minutes` plus the run's own offset
    (below `spread_minutes`) before the current minute."""
    offset = _run_number(run_id) % spread_minutes
    return floor_minute(now) - dt.timedelta(minutes=age_minutes + offset)


def marker_signal_dbm(run_id: str) -> int:
    """The signal level every event of run `run_id` reports, in -129..-30 dBm."""
    return -30 - (_run_number(run_id) // MARKER_SPREAD_MINUTES) % MARKER_SIGNAL_LEVELS


def summary_instant(window_start: dt.datetime, *, complete_after_s: int) -> dt.datetime:
    """The `at` for which /v1/summary reports `window_start` as its latest complete minute.

    The API reports the minute floor(at - complete_after_s - 60 s); the middle of that minute
    is chosen so a clock that is off by a few seconds still lands in it.
    """
    return window_start + dt.timedelta(seconds=complete_after_s + 60 + 30)


def marker_event(
    run_id: str, index: int, window_start: dt.datetime, signal_dbm: int
) -> dict[str, object]:
    """The payload of marked event `index` (validated by the shared schema when encoded)."""
    offset = dt.timedelta(seconds=index % 60)  # spread over the minute, never past its end
    return {
        "event_id": f"smoke-{run_id}-{index:05d}",
        "device_id": f"smoke-{run_id}",
        "event_time": (window_start + offset).isoformat(),
        "operator": MARKER_OPERATOR,
        "network_type": "4G",
        "signal_dbm": signal_dbm,
        "provider": "gps",
        "gps_precision_m": 5.0,
        "latitude": 0.0,
        "longitude": 0.0,
        "postal_code": MARKER_POSTAL_CODE,
        "status": "IN_SERVICE",
        "activity": "STILL",
    }


def marker_run(run_id: str, window_start: dt.datetime, *, count: int) -> MarkerRun:
    """`count` marked events of run `run_id` dated in the minute starting at `window_start`,
    encoded exactly as the producer encodes events (canonical JSON, partition key = device)."""
    if count < 1:
        raise ValueError("a smoke run sends at least one event")
    if len(run_id) > 40 or not run_id:
        raise ValueError("a run id is 1 to 40 characters (event ids are at most 64)")
    start = floor_minute(window_start)
    signal = marker_signal_dbm(run_id)
    records = []
    for index in range(count):
        event = validate_event(marker_event(run_id, index, start, signal))
        records.append(
            MarkerRecord(data=event_to_json(event).encode("utf-8"), partition_key=f"smoke-{run_id}")
        )
    return MarkerRun(run_id=run_id, window_start=start, signal_dbm=signal, records=tuple(records))
