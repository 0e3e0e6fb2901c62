"""Mapping between the legacy `mobile_logs.csv` rows and telemetry events.

Legacy columns: hour, lat, long, signal, network, operator, status, description, speed,
satellites, precission (sic), provider, activity, postal_code. The legacy `hour` is a time of day
(HH:MM:SS) with no date, so a replay supplies the date; a full ISO-8601 timestamp is accepted too.
Legacy rows carry no event or device id: `event_id` is a UUIDv5 of the source name, line number and
row content (stable across replays of the same file), `device_id` is `LEGACY_DEVICE_ID`.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

from signal_common.schema import field_errors, validate_event

LEGACY_COLUMNS: tuple[str, ...] = (
    "hour",
    "lat",
    "long",
    "signal",
    "network",
    "operator",
    "status",
    "description",
    "speed",
    "satellites",
    "precission",
    "provider",
    "activity",
    "postal_code",
)
REQUIRED_LEGACY_COLUMNS: frozenset[str] = frozenset(
    {"hour", "signal", "network", "operator", "status", "precission", "provider", "activity",
     "postal_code", "lat", "long"}
)  # fmt: skip
# legacy column -> event field, for the columns that map one to one
LEGACY_TO_EVENT: Mapping[str, str] = {
    "hour": "event_time",
    "network": "network_type",
    "signal": "signal_dbm",
    "precission": "gps_precision_m",
    "lat": "latitude",
    "long": "longitude",
    "speed": "speed_kmh",
    "satellites": "satellites",
    "operator": "operator",
    "provider": "provider",
    "activity": "activity",
    "postal_code": "postal_code",
    "status": "status",
}
LEGACY_DEVICE_ID = "legacy-csv"
_EVENT_ID_NAMESPACE = uuid.UUID("6f1b8a7e-3c1e-4a59-9d6a-5b8e2f0c4d21")

_NETWORK_ALIASES: Mapping[str, str] = {
    "2G": "2G", "GSM": "2G", "GPRS": "2G", "EDGE": "2G",
    "3G": "3G", "UMTS": "3G", "HSPA": "3G", "HSPA+": "3G", "WCDMA": "3G",
    "4G": "4G", "LTE": "4G", "LTE-A": "4G",
    "5G": "5G", "NR": "5G",
}  # fmt: skip


class LegacyRowError(ValueError):
    """A legacy CSV row that cannot become a valid event."""

    def __init__(self, line_number: int, message: str) -> None:
        super().__init__(f"line {line_number}: {message}")
        self.line_number = line_number
        self.message = message


def _number(value: str, *, column: str, line_number: int) -> float:
    try:
        return float(value)
    except ValueError:
        raise LegacyRowError(line_number, f"column {column!r}: {value!r} is not a number") from None


def _event_time(value: str, *, base_date: dt.date, line_number: int) -> dt.datetime:
    text = value.strip()
    try:
        if "T" in text or "-" in text:
            parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
        clock = dt.time.fromisoformat(text)
    except ValueError:
        raise LegacyRowError(
            line_number, f"column 'hour': {value!r} is neither HH:MM:SS nor an ISO-8601 time"
        ) from None
    return dt.datetime.combine(base_date, clock, tzinfo=dt.UTC)


def legacy_event_id(source: str, line_number: int, row: Mapping[str, str]) -> str:
    """The stable event id of a legacy row."""
    content = "\x1f".join(f"{k}={row.get(k, '')}" for k in LEGACY_COLUMNS)
    return str(uuid.uuid5(_EVENT_ID_NAMESPACE, f"{source}\x1e{line_number}\x1e{content}"))


def legacy_row_to_payload(
    row: Mapping[str, str], *, line_number: int, base_date: dt.date, source: str
) -> dict[str, Any]:
    """The event payload (not yet validated) of one legacy CSV row."""
    missing = sorted(c for c in REQUIRED_LEGACY_COLUMNS if not (row.get(c) or "").strip())
    if missing:
        raise LegacyRowError(line_number, f"missing value for column(s) {', '.join(missing)}")
    signal = _number(row["signal"], column="signal", line_number=line_number)
    if not signal.is_integer():
        raise LegacyRowError(line_number, f"column 'signal': {row['signal']!r} is not whole dBm")
    network = row["network"].strip().upper()
    payload: dict[str, Any] = {
        "event_id": legacy_event_id(source, line_number, row),
        "device_id": LEGACY_DEVICE_ID,
        "event_time": _event_time(row["hour"], base_date=base_date, line_number=line_number),
        "operator": row["operator"].strip(),
        "network_type": _NETWORK_ALIASES.get(network, network),
        "signal_dbm": int(signal),
        "provider": row["provider"].strip().lower(),
        "gps_precision_m": _number(row["precission"], column="precission", line_number=line_number),
        "latitude": _number(row["lat"], column="lat", line_number=line_number),
        "longitude": _number(row["long"], column="long", line_number=line_number),
        "postal_code": row["postal_code"].strip(),
        "status": row["status"].strip().upper(),
        "activity": row["activity"].strip().upper(),
        "speed_kmh": None,
        "satellites": None,
        "cell_id": None,
    }
    if (row.get("speed") or "").strip():
        payload["speed_kmh"] = _number(row["speed"], column="speed", line_number=line_number)
    if (row.get("satellites") or "").strip():
        sats = _number(row["satellites"], column="satellites", line_number=line_number)
        if not sats.is_integer():
            raise LegacyRowError(line_number, f"column 'satellites': {row['satellites']!r}")
        payload["satellites"] = int(sats)
    return payload


def legacy_row_to_event(
    row: Mapping[str, str], *, line_number: int, base_date: dt.date, source: str
) -> BaseModel:
    """A validated event from one legacy CSV row; LegacyRowError says what is wrong."""
    payload = legacy_row_to_payload(
        row, line_number=line_number, base_date=base_date, source=source
    )
    try:
        return validate_event(payload)
    except ValidationError as exc:
        legacy_name = {v: k for k, v in LEGACY_TO_EVENT.items()}
        problems = "; ".join(
            f"column {legacy_name.get(e.field, e.field)!r}: {e.message}" for e in field_errors(exc)
        )
        raise LegacyRowError(line_number, problems) from None


def event_to_legacy_row(event: Mapping[str, Any]) -> dict[str, str]:
    """The legacy CSV row of an event payload (time of day only, as the legacy file has it)."""
    event_time = event["event_time"]
    if isinstance(event_time, str):
        event_time = dt.datetime.fromisoformat(event_time.replace("Z", "+00:00"))

    def text(value: Any) -> str:
        return "" if value is None else str(value)

    return {
        "hour": event_time.astimezone(dt.UTC).strftime("%H:%M:%S"),
        "lat": text(event["latitude"]),
        "long": text(event["longitude"]),
        "signal": text(event["signal_dbm"]),
        "network": text(event["network_type"]),
        "operator": text(event["operator"]),
        "status": text(event["status"]),
        "description": "",
        "speed": text(event.get("speed_kmh")),
        "satellites": text(event.get("satellites")),
        "precission": text(event["gps_precision_m"]),
        "provider": text(event["provider"]),
        "activity": text(event["activity"]),
        "postal_code": text(event["postal_code"]),
    }
