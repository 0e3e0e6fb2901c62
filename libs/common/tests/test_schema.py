"""The derived forms of the event agree field by field; invalid events get field-level reasons."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import jsonschema
import pyarrow as pa
import pytest
from pydantic import ValidationError

from signal_common.schema import (
    EVENT_FIELD_NAMES,
    TelemetryEvent,
    arrow_schema,
    event_to_json,
    field_errors,
    glue_columns,
    json_schema,
    validate_event,
)

# Written by hand, independently of the code: name -> (arrow type, hive type, json type, required)
EXPECTED = {
    "event_id": (pa.string(), "string", "string", True),
    "device_id": (pa.string(), "string", "string", True),
    "event_time": (pa.timestamp("us", tz="UTC"), "timestamp", "string", True),
    "operator": (pa.string(), "string", "string", True),
    "network_type": (pa.string(), "string", "string", True),
    "signal_dbm": (pa.int32(), "int", "integer", True),
    "provider": (pa.string(), "string", "string", True),
    "gps_precision_m": (pa.float64(), "double", "number", True),
    "latitude": (pa.float64(), "double", "number", True),
    "longitude": (pa.float64(), "double", "number", True),
    "postal_code": (pa.string(), "string", "string", True),
    "status": (pa.string(), "string", "string", True),
    "activity": (pa.string(), "string", "string", True),
    "speed_kmh": (pa.float64(), "double", "number", False),
    "satellites": (pa.int32(), "int", "integer", False),
    "cell_id": (pa.int64(), "bigint", "integer", False),
}


def valid_payload(**overrides: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "event_id": "e-1",
        "device_id": "d-1",
        "event_time": "2026-11-23T10:15:30.250Z",
        "operator": "Movistar",
        "network_type": "4G",
        "signal_dbm": -95,
        "provider": "gps",
        "gps_precision_m": 4.5,
        "latitude": 40.4168,
        "longitude": -3.7038,
        "postal_code": "28013",
        "status": "IN_SERVICE",
        "activity": "WALKING",
        "speed_kmh": 5.2,
        "satellites": 9,
        "cell_id": 123456789,
    }
    payload.update(overrides)
    return payload


def test_field_order_and_names_are_the_declared_ones() -> None:
    assert list(EVENT_FIELD_NAMES) == list(EXPECTED)
    assert list(TelemetryEvent.model_fields) == list(EXPECTED)
    assert arrow_schema().names == list(EXPECTED)
    assert [c["Name"] for c in glue_columns()] == list(EXPECTED)
    assert list(json_schema()["properties"]) == list(EXPECTED)


@pytest.mark.parametrize("name", list(EXPECTED))
def test_every_derived_form_agrees(name: str) -> None:
    arrow, hive, json_type, required = EXPECTED[name]
    field = arrow_schema().field(name)
    assert field.type == arrow
    assert field.nullable is (not required)
    assert {c["Name"]: c["Type"] for c in glue_columns()}[name] == hive
    prop = json_schema()["properties"][name]
    types = [p.get("type") for p in prop.get("anyOf", [prop])]
    assert types == ([json_type] if required else [json_type, "null"])
    assert (name in json_schema()["required"]) is required
    assert TelemetryEvent.model_fields[name].is_required() is required


def test_json_schema_enums_and_ranges_match_pydantic() -> None:
    ours = json_schema()["properties"]
    theirs = TelemetryEvent.model_json_schema()["properties"]
    for name in ("network_type", "provider", "status", "activity"):
        assert ours[name]["enum"] == theirs[name]["enum"]
    assert ours["network_type"]["enum"] == ["2G", "3G", "4G", "5G"]
    assert ours["signal_dbm"]["minimum"] == theirs["signal_dbm"]["minimum"] == -150
    assert ours["signal_dbm"]["maximum"] == theirs["signal_dbm"]["maximum"] == -20
    assert ours["latitude"]["maximum"] == 90


def test_json_schema_validates_with_a_real_validator() -> None:
    validator = jsonschema.Draft202012Validator(json_schema())
    assert not list(validator.iter_errors(valid_payload()))
    assert list(validator.iter_errors(valid_payload(network_type="6G")))


def test_valid_event_round_trips_and_is_utc() -> None:
    event = validate_event(valid_payload(event_time="2026-11-23T11:15:30+01:00"))
    assert event.event_time == dt.datetime(2026, 11, 23, 10, 15, 30, tzinfo=dt.UTC)  # type: ignore[attr-defined]
    again = validate_event(json.loads(event_to_json(event)))
    assert again == event


def test_optional_fields_may_be_absent() -> None:
    payload = valid_payload()
    for name in ("speed_kmh", "satellites", "cell_id"):
        del payload[name]
    assert validate_event(payload).satellites is None  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("overrides", "field", "reason"),
    [
        ({"signal_dbm": "strong"}, "signal_dbm", "wrong_type"),
        ({"signal_dbm": "-85"}, "signal_dbm", "wrong_type"),
        ({"signal_dbm": -85.5}, "signal_dbm", "wrong_type"),
        ({"latitude": "north"}, "latitude", "wrong_type"),
        ({"event_time": "yesterday"}, "event_time", "wrong_type"),
        ({"event_time": "2026-11-23T10:15:30"}, "event_time", "wrong_type"),
        ({"signal_dbm": -10}, "signal_dbm", "out_of_range"),
        ({"signal_dbm": -151}, "signal_dbm", "out_of_range"),
        ({"latitude": 91.0}, "latitude", "out_of_range"),
        ({"gps_precision_m": -1.0}, "gps_precision_m", "out_of_range"),
        ({"event_id": ""}, "event_id", "out_of_range"),
        ({"network_type": "6G"}, "network_type", "unknown_enum"),
        ({"status": "in_service"}, "status", "unknown_enum"),
        ({"provider": "wifi"}, "provider", "unknown_enum"),
        ({"colour": "red"}, "colour", "extra_field"),
    ],
)
def test_invalid_events_are_rejected_with_field_level_reasons(
    overrides: dict[str, Any], field: str, reason: str
) -> None:
    with pytest.raises(ValidationError) as info:
        validate_event(valid_payload(**overrides))
    errors = field_errors(info.value)
    assert [(e.field, e.reason) for e in errors] == [(field, reason)]
    assert errors[0].message


def test_missing_fields_are_each_named() -> None:
    payload = valid_payload()
    del payload["operator"]
    del payload["status"]
    with pytest.raises(ValidationError) as info:
        validate_event(payload)
    assert sorted((e.field, e.reason) for e in field_errors(info.value)) == [
        ("operator", "missing"),
        ("status", "missing"),
    ]


def test_every_field_error_reason_is_a_quarantine_reason() -> None:
    from signal_common.schema import _REASON_BY_PYDANTIC_TYPE, QUARANTINE_REASONS

    assert set(_REASON_BY_PYDANTIC_TYPE.values()) <= set(QUARANTINE_REASONS)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b'{"event_id": ', "invalid_json"),
        (b"\xff\xfe", "invalid_json"),
        (b"[1, 2]", "not_an_object"),
        (b'"just a string"', "not_an_object"),
    ],
)
def test_raw_json_rejections(raw: bytes, reason: str) -> None:
    with pytest.raises(ValidationError) as info:
        TelemetryEvent.model_validate_json(raw)
    assert field_errors(info.value)[0].reason == reason
