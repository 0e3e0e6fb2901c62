"""Marked events: valid by the shared schema, encoded as the producer encodes them, findable."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from signal_common.schema import EVENT_FIELD_NAMES, validate_event
from signal_smoke.core.marker import (
    marker_run,
    marker_signal_dbm,
    marker_window,
    summary_instant,
)

W = dt.datetime(2026, 12, 1, 18, 2, tzinfo=dt.UTC)


def test_marked_events_are_valid_canonical_json_in_the_marker_minute() -> None:
    run = marker_run("abc123", W, count=75)
    assert run.count == 75
    assert run.window_start == W
    assert run.window_end == dt.datetime(2026, 12, 1, 18, 3, tzinfo=dt.UTC)
    ids = set()
    for record in run.records:
        text = record.data.decode("utf-8")
        payload = json.loads(text)
        # exactly the producer's encoding: canonical compact JSON of the validated event
        assert text == json.dumps(
            validate_event(payload).model_dump(mode="json"), separators=(",", ":")
        )
        assert set(payload) <= set(EVENT_FIELD_NAMES)
        assert payload["device_id"] == "smoke-abc123" == record.partition_key
        assert payload["event_id"].startswith("smoke-abc123-")
        assert payload["operator"] == "signal-smoke"
        assert payload["signal_dbm"] == run.signal_dbm == marker_signal_dbm("abc123")
        moment = dt.datetime.fromisoformat(payload["event_time"].replace("Z", "+00:00"))
        assert W <= moment < W + dt.timedelta(minutes=1)
        ids.add(payload["event_id"])
    assert len(ids) == 75  # none is removed by dedup
    assert run.signal_sum == 75 * run.signal_dbm


def test_the_marker_minute_is_whole_in_the_past_and_the_runs_own() -> None:
    now = dt.datetime(2026, 12, 1, 20, 2, 41, 500, tzinfo=dt.UTC)
    assert marker_window(now, "any", age_minutes=120, spread_minutes=1) == W
    assert marker_run("r", W + dt.timedelta(seconds=17), count=1).window_start == W
    runs = [f"run{i}" for i in range(200)]
    windows = {marker_window(now, r, age_minutes=2880) for r in runs}
    earliest, latest = now - dt.timedelta(days=3), now - dt.timedelta(days=2)
    assert all(earliest <= w <= latest and w.second == 0 for w in windows)
    assert len(windows) > 150  # two runs rarely share a minute …
    levels = {marker_signal_dbm(r) for r in runs}
    assert all(-129 <= level <= -30 for level in levels)
    assert len(levels) > 60  # … or a level
    assert marker_window(now, "run7", age_minutes=2880) == marker_window(
        now, "run7", age_minutes=2880
    )


def test_the_summary_instant_reports_the_marker_minute() -> None:
    # signal_api.core.service.summary: newest complete = floor_minute(at - complete_after - 60)
    at = summary_instant(W, complete_after_s=60)
    assert at == dt.datetime(2026, 12, 1, 18, 4, 30, tzinfo=dt.UTC)
    newest_complete = (at - dt.timedelta(seconds=120)).replace(second=0)
    assert newest_complete == W


@pytest.mark.parametrize(("run_id", "count"), [("", 1), ("x" * 41, 1), ("ok", 0)])
def test_bad_runs_are_refused(run_id: str, count: int) -> None:
    with pytest.raises(ValueError, match="run"):
        marker_run(run_id, W, count=count)
