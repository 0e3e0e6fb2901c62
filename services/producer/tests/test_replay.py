"""Replay of legacy mobile_logs.csv files: the sample yields the expected events; bad rows skip."""

from __future__ import annotations

import datetime as dt
import io
import json
from pathlib import Path

import pandas as pd

from signal_producer.core.legacy import LEGACY_DEVICE_ID
from signal_producer.core.replay import ReplayStats, replay_records

DAY = dt.date(2026, 2, 3)


def test_sample_csv_replays_to_the_rows_it_holds(sample_csv: Path) -> None:
    with sample_csv.open(encoding="utf-8", newline="") as handle:
        stats = ReplayStats()
        records = list(replay_records(handle, source=sample_csv.name, base_date=DAY, stats=stats))
    rows = pd.read_csv(sample_csv, dtype={"postal_code": str})
    assert stats.bad_rows == 0
    assert stats.rows == len(rows) == len(records) == 200
    events = pd.DataFrame([json.loads(r.data) for r in records])
    assert (events["device_id"] == LEGACY_DEVICE_ID).all()
    assert events["event_id"].is_unique
    assert [r.partition_key for r in records] == [LEGACY_DEVICE_ID] * len(records)
    assert (events["signal_dbm"] == rows["signal"]).all()
    assert (events["network_type"] == rows["network"]).all()
    assert (events["operator"] == rows["operator"]).all()
    assert (events["provider"] == rows["provider"]).all()
    assert (events["postal_code"] == rows["postal_code"]).all()
    assert (events["latitude"] == rows["lat"]).all()
    assert (events["longitude"] == rows["long"]).all()
    assert (events["gps_precision_m"] == rows["precission"]).all()
    assert events["speed_kmh"].fillna(-1).equals(rows["speed"].fillna(-1).astype(float))
    expected_times = [f"{DAY.isoformat()}T{hour}Z" for hour in rows["hour"]]
    assert list(events["event_time"]) == expected_times
    # cadence: offsets are seconds since the first row
    first = dt.datetime.fromisoformat(expected_times[0])
    assert [r.send_offset_s for r in records] == [
        (dt.datetime.fromisoformat(t) - first).total_seconds() for t in expected_times
    ]


HEADER = "hour,lat,long,signal,network,operator,status,description,speed,satellites,precission,provider,activity,postal_code\n"  # noqa: E501
GOOD = "10:00:00,41.6,-4.7,-90,LTE,Altamar,in_service,,12.5,7,5.0,GPS,walking,47001\n"


def test_bad_rows_are_reported_with_line_numbers_and_skipped() -> None:
    text = (
        HEADER
        + GOOD
        + "10:00:01,41.6,-4.7,strong,4G,Altamar,IN_SERVICE,,,,5.0,gps,STILL,47001\n"  # line 3
        + "10:00:02,41.6,-4.7,-90,4G,Altamar,IN_SERVICE,,,,5.0,gps,STILL,\n"  # line 4
        + "25:61:00,41.6,-4.7,-90,4G,Altamar,IN_SERVICE,,,,5.0,gps,STILL,47001\n"  # line 5
        + "10:00:04,141.6,-4.7,-90,4G,Altamar,IN_SERVICE,,,,5.0,gps,STILL,47001\n"  # line 6
        + "10:00:05,41.6,-4.7,-90,4G,Altamar,IN_SERVICE,,,,5.0,gps,STILL,47001,extra\n"  # 7
        + GOOD.replace("10:00:00", "10:00:06")
    )
    stats = ReplayStats()
    seen: list[int] = []
    records = list(
        replay_records(
            io.StringIO(text),
            source="x.csv",
            base_date=DAY,
            stats=stats,
            on_bad_row=lambda e: seen.append(e.line_number),
        )
    )
    assert len(records) == 2
    assert stats.rows == 7
    assert stats.bad_rows == 5
    assert seen == [3, 4, 5, 6, 7]
    assert "line 3" in stats.errors[0]
    assert "signal" in stats.errors[0]
    assert "postal_code" in stats.errors[1]
    assert "lat" in stats.errors[3]
    first = json.loads(records[0].data)
    assert (first["network_type"], first["status"], first["provider"], first["activity"]) == (
        "4G", "IN_SERVICE", "gps", "WALKING",
    )  # fmt: skip
    assert records[1].send_offset_s == 6.0


def test_time_of_day_rolls_over_midnight() -> None:
    text = HEADER + GOOD.replace("10:00:00", "23:59:58") + GOOD.replace("10:00:00", "00:00:03")
    records = list(replay_records(io.StringIO(text), source="x.csv", base_date=DAY))
    times = [json.loads(r.data)["event_time"] for r in records]
    assert times == ["2026-02-03T23:59:58Z", "2026-02-04T00:00:03Z"]
    assert records[1].send_offset_s == 5.0


def test_partition_key_can_be_another_field() -> None:
    records = list(
        replay_records(
            io.StringIO(HEADER + GOOD), source="x.csv", base_date=DAY, partition_key="postal_code"
        )
    )
    assert records[0].partition_key == "47001"
