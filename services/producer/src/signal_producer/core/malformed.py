"""Malformed records with exactly one defect, whose quarantine reason is known in advance.

A consumer checks size first (`oversize`), then JSON (`invalid_json`, `not_an_object`), then the
schema (`validate_event`; the reason is `field_errors(...)[0].reason`), then the event time
against the record's arrival (`implausible_time`). Each function here breaks
a valid event payload in one way only, so the claimed reason is the only one a consumer can find.
"""

from __future__ import annotations

import datetime as dt
import json
import random
from collections.abc import Callable
from typing import Any

from signal_common.schema import MAX_EVENT_BYTES, QUARANTINE_REASONS

# Kinesis accepts records up to 1 MiB; stay well inside it so the record is accepted and the
# consumer, not the producer, has to deal with it.
MAX_OVERSIZE_BYTES = 64 * 1024

_REQUIRED = (
    "event_id", "device_id", "event_time", "operator", "network_type", "signal_dbm",
    "provider", "gps_precision_m", "latitude", "longitude", "postal_code", "status", "activity",
)  # fmt: skip


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _oversize(canonical: str, payload: dict[str, Any], rng: random.Random) -> str:
    # Trailing whitespace keeps it a valid event: its only defect is its size.
    target = rng.randint(MAX_EVENT_BYTES + 1, MAX_OVERSIZE_BYTES)
    return canonical + " " * (target - len(canonical.encode("utf-8")))


def _invalid_json(canonical: str, payload: dict[str, Any], rng: random.Random) -> str:
    choice = rng.randrange(3)
    if choice == 0:  # cut off mid-record, as a dropped connection would
        return canonical[: rng.randint(1, len(canonical) - 1)]
    if choice == 1:  # trailing comma
        return canonical[:-1] + ",}"
    return canonical.replace('"', "'", 2)  # a hand-rolled encoder with single quotes


def _not_an_object(canonical: str, payload: dict[str, Any], rng: random.Random) -> str:
    choice = rng.randrange(3)
    if choice == 0:
        return f"[{canonical}]"  # a batch of one, wrapped in an array
    if choice == 1:
        return _compact(canonical)  # the event double-encoded as a JSON string
    return _compact(payload["signal_dbm"])


def _missing(canonical: str, payload: dict[str, Any], rng: random.Random) -> str:
    broken = dict(payload)
    del broken[rng.choice(_REQUIRED)]
    return _compact(broken)


_WRONG_TYPES: tuple[tuple[str, Callable[[Any], Any]], ...] = (
    ("signal_dbm", str),  # "-85"
    ("signal_dbm", lambda v: v + 0.5),
    ("latitude", str),
    ("longitude", str),
    ("gps_precision_m", str),
    ("operator", lambda v: 42),
    ("event_id", lambda v: 123456789),
    ("event_time", lambda v: v.rstrip("Z")),  # naive time: no zone
    ("event_time", lambda v: "yesterday"),
    ("postal_code", lambda v: int(v)),
)


def _wrong_type(canonical: str, payload: dict[str, Any], rng: random.Random) -> str:
    field, change = rng.choice(_WRONG_TYPES)
    return _compact({**payload, field: change(payload[field])})


_OUT_OF_RANGE: tuple[tuple[str, Callable[[random.Random], Any]], ...] = (
    ("signal_dbm", lambda r: r.randint(-400, -151)),
    ("signal_dbm", lambda r: r.randint(-19, 40)),
    ("latitude", lambda r: round(r.uniform(90.5, 180.0), 5)),
    ("longitude", lambda r: round(r.uniform(-360.0, -180.5), 5)),
    ("gps_precision_m", lambda r: round(r.uniform(-50.0, -0.1), 1)),
    ("speed_kmh", lambda r: round(r.uniform(500.5, 2000.0), 1)),
    ("satellites", lambda r: r.randint(129, 1000)),
    ("cell_id", lambda r: -r.randint(1, 1000)),
    ("postal_code", lambda r: ""),
    ("device_id", lambda r: "d" * r.randint(65, 100)),
)


def _out_of_range(canonical: str, payload: dict[str, Any], rng: random.Random) -> str:
    field, value = rng.choice(_OUT_OF_RANGE)
    return _compact({**payload, field: value(rng)})


_UNKNOWN_ENUMS: tuple[tuple[str, str], ...] = (
    ("network_type", "6G"),
    ("network_type", "LTE"),
    ("provider", "wifi"),
    ("status", "ROAMING"),
    ("activity", "FLYING"),
    ("activity", "still"),
)


def _unknown_enum(canonical: str, payload: dict[str, Any], rng: random.Random) -> str:
    field, value = rng.choice(_UNKNOWN_ENUMS)
    return _compact({**payload, field: value})


_EXTRA_FIELDS: tuple[tuple[str, Any], ...] = (
    ("battery_pct", 57),
    ("ssid", "HomeWifi"),
    ("imei", "356938035643809"),
)


def _extra_field(canonical: str, payload: dict[str, Any], rng: random.Random) -> str:
    field, value = rng.choice(_EXTRA_FIELDS)
    return _compact({**payload, field: value})


def _implausible_time(canonical: str, payload: dict[str, Any], rng: random.Random) -> str:
    # valid by the schema, but dated a day to a year ahead of when it is sent, or 40 to 400
    # days behind: a consumer quarantines it against the record's arrival time
    moment = dt.datetime.fromisoformat(payload["event_time"].replace("Z", "+00:00"))
    if rng.random() < 0.5:
        moment += dt.timedelta(days=rng.uniform(1, 365))
    else:
        moment -= dt.timedelta(days=rng.uniform(40, 400))
    stamp = moment.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return _compact({**payload, "event_time": stamp})


_BREAKERS: dict[str, Callable[[str, dict[str, Any], random.Random], str]] = {
    "oversize": _oversize,
    "invalid_json": _invalid_json,
    "not_an_object": _not_an_object,
    "missing": _missing,
    "wrong_type": _wrong_type,
    "out_of_range": _out_of_range,
    "unknown_enum": _unknown_enum,
    "extra_field": _extra_field,
    "implausible_time": _implausible_time,
}
assert set(_BREAKERS) == set(QUARANTINE_REASONS), "one breaker per quarantine reason"


def malformed_record(canonical: str, reason: str, rng: random.Random) -> str:
    """A copy of the canonical event JSON broken so that its quarantine reason is `reason`."""
    payload = json.loads(canonical)
    return _BREAKERS[reason](canonical, payload, rng)
