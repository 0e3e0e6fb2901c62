"""Test data: deterministic event payloads and one malformed record per quarantine reason."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

BASE_TIME = dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.UTC)


def make_event(i: int, **overrides: Any) -> dict[str, Any]:
    """A valid event payload, varied by `i` (deterministic)."""
    networks = ["2G", "3G", "4G", "5G"]
    statuses = ["IN_SERVICE", "IN_SERVICE", "IN_SERVICE", "OUT_OF_SERVICE", "EMERGENCY_ONLY"]
    event: dict[str, Any] = {
        "event_id": f"evt-{i:06d}",
        "device_id": f"dev-{i % 7}",
        "event_time": (BASE_TIME + dt.timedelta(seconds=7 * i)).isoformat().replace("+00:00", "Z"),
        "operator": ["Movistar", "Vodafone", "Orange"][i % 3],
        "network_type": networks[i % 4],
        "signal_dbm": -60 - (i * 7) % 70,
        "provider": ["gps", "network", "fused"][i % 3],
        "gps_precision_m": round(3.0 + (i * 13) % 500 / 7, 3),
        "latitude": 40.0 + (i % 11) / 100,
        "longitude": -3.7 - (i % 5) / 100,
        "postal_code": f"280{i % 4:02d}",
        "status": statuses[i % 5],
        "activity": ["STILL", "WALKING", "IN_VEHICLE"][i % 3],
        "speed_kmh": None if i % 4 == 0 else float(i % 90),
        "satellites": None if i % 3 == 1 else i % 12,
        "cell_id": 1000 + i % 50,
    }
    event.update(overrides)
    return event


def encode(event: dict[str, Any]) -> bytes:
    return json.dumps(event, separators=(",", ":")).encode()


MALFORMED: list[tuple[bytes, str]] = [
    (b'{"event_id": "x"', "invalid_json"),
    (b"[1,2,3]", "not_an_object"),
    (encode({k: v for k, v in make_event(900).items() if k != "operator"}), "missing"),
    (encode(make_event(901, signal_dbm="-85")), "wrong_type"),
    (encode(make_event(902, latitude=123.0)), "out_of_range"),
    (encode(make_event(903, network_type="6G")), "unknown_enum"),
    (encode(make_event(904, colour="red")), "extra_field"),
    (b'{"pad": "' + b"x" * 20_000 + b'"}', "oversize"),
]
