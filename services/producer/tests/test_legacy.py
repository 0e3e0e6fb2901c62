"""Legacy mobile_logs.csv rows map to events; bad rows say which line and column."""

from __future__ import annotations

import datetime as dt

import pytest

from signal_producer.core.legacy import (
    LEGACY_DEVICE_ID,
    LegacyRowError,
    event_to_legacy_row,
    legacy_row_to_event,
)

ROW = {
    "hour": "10:15:30",
    "lat": "40.4168",
    "long": "-3.7038",
    "signal": "-95",
    "network": "LTE",
    "operator": "Movistar",
    "status": "in_service",
    "description": "whatever",
    "speed": "12.5",
    "satellites": "7",
    "precission": "4.5",
    "provider": "GPS",
    "activity": "walking",
    "postal_code": "28013",
}
DAY = dt.date(2026, 11, 23)


def test_row_maps_to_event() -> None:
    event = legacy_row_to_event(ROW, line_number=2, base_date=DAY, source="mobile_logs.csv")
    got = event.model_dump()
    assert got["event_time"] == dt.datetime(2026, 11, 23, 10, 15, 30, tzinfo=dt.UTC)
    assert got["network_type"] == "4G"
    assert got["signal_dbm"] == -95
    assert got["gps_precision_m"] == 4.5
    assert (got["latitude"], got["longitude"]) == (40.4168, -3.7038)
    assert (got["provider"], got["status"], got["activity"]) == ("gps", "IN_SERVICE", "WALKING")
    assert (got["speed_kmh"], got["satellites"], got["cell_id"]) == (12.5, 7, None)
    assert got["device_id"] == LEGACY_DEVICE_ID


def test_event_id_is_stable_per_source_and_line() -> None:
    a = legacy_row_to_event(ROW, line_number=2, base_date=DAY, source="a.csv").event_id  # type: ignore[attr-defined]
    again = legacy_row_to_event(ROW, line_number=2, base_date=DAY, source="a.csv").event_id  # type: ignore[attr-defined]
    other_line = legacy_row_to_event(ROW, line_number=3, base_date=DAY, source="a.csv").event_id  # type: ignore[attr-defined]
    other_file = legacy_row_to_event(ROW, line_number=2, base_date=DAY, source="b.csv").event_id  # type: ignore[attr-defined]
    assert a == again
    assert len({a, other_line, other_file}) == 3


def test_iso_timestamps_are_accepted_in_hour() -> None:
    row = {**ROW, "hour": "2026-01-02T03:04:05Z"}
    event = legacy_row_to_event(row, line_number=2, base_date=DAY, source="x")
    assert event.event_time == dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"signal": "strong"}, "line 7: column 'signal': 'strong' is not a number"),
        ({"signal": ""}, "line 7: missing value for column(s) signal"),
        ({"hour": "25:99"}, "line 7: column 'hour': '25:99' is neither HH:MM:SS"),
        ({"network": "6G"}, "line 7: column 'network':"),
        ({"signal": "-5"}, "line 7: column 'signal':"),
        ({"signal": "-85.5"}, "line 7: column 'signal': '-85.5' is not whole dBm"),
    ],
)
def test_bad_rows_name_line_and_column(change: dict[str, str], message: str) -> None:
    with pytest.raises(LegacyRowError) as info:
        legacy_row_to_event({**ROW, **change}, line_number=7, base_date=DAY, source="x")
    assert str(info.value).startswith(message)
    assert info.value.line_number == 7


def test_event_to_legacy_row_round_trips() -> None:
    event = legacy_row_to_event(ROW, line_number=2, base_date=DAY, source="x")
    row = event_to_legacy_row(event.model_dump(mode="json"))
    again = legacy_row_to_event(row, line_number=2, base_date=DAY, source="y")
    same = {"event_id", "device_id"}
    assert {k: v for k, v in again.model_dump().items() if k not in same} == {
        k: v for k, v in event.model_dump().items() if k not in same
    }
