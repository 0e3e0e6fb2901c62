"""The synthetic fleet: deterministic telemetry for a seed, with switchable scenarios.

Devices live in the packaged synthetic region, each with an operator (by market share), a radio
generation it supports and an activity that changes now and then; moving devices hop to
neighbouring postal codes. Signal levels follow a per-technology distribution shifted by the
coverage quality of the postal code. Scenarios: outages, late events, duplicates, malformed.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
import random
import uuid
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from signal_common.schema import (
    EVENT_FIELD_NAMES,
    QUARANTINE_REASONS,
    event_to_json,
    validate_event,
)
from signal_producer.core.geo import PostalArea, neighbours, postal_areas
from signal_producer.core.malformed import malformed_record
from signal_producer.core.records import GeneratedRecord, readable_event_id
from signal_producer.core.scenarios import LateDelay, Outage

OPERATORS: tuple[tuple[str, float], ...] = (
    ("Altamar", 0.34),
    ("Vela Movil", 0.27),
    ("Ondanet", 0.21),
    ("Brisa", 0.12),
    ("Kobalt", 0.06),
)
# share of devices by the newest radio generation they support
CAPABILITIES: tuple[tuple[str, float], ...] = (
    ("5G", 0.38),
    ("4G", 0.5),
    ("3G", 0.09),
    ("2G", 0.03),
)
_FALLBACK = {"5G": "4G", "4G": "3G", "3G": "2G", "2G": "2G"}
# typical received level (mean, sd, floor, ceiling) in dBm: RSSI 2G, RSCP 3G, RSRP 4G, SS-RSRP 5G
SIGNAL_DBM: dict[str, tuple[float, float, int, int]] = {
    "2G": (-78.0, 11.0, -110, -48),
    "3G": (-87.0, 11.0, -120, -50),
    "4G": (-97.0, 12.0, -140, -44),
    "5G": (-101.0, 13.0, -140, -44),
}
PROVIDERS: tuple[tuple[str, float], ...] = (("gps", 0.5), ("fused", 0.32), ("network", 0.18))
# precision radius (median m, log-sd, min, max): a few metres for gps, up to km for network
PRECISION_M: dict[str, tuple[float, float, float, float]] = {
    "gps": (5.0, 0.45, 1.0, 60.0),
    "fused": (11.0, 0.6, 2.0, 250.0),
    "network": (250.0, 1.0, 15.0, 5000.0),
}
ACTIVITIES: tuple[tuple[str, float], ...] = (
    ("STILL", 0.42),
    ("WALKING", 0.22),
    ("IN_VEHICLE", 0.2),
    ("ON_BICYCLE", 0.06),
    ("RUNNING", 0.04),
    ("UNKNOWN", 0.06),
)
# speed range km/h and chance per event to move to a neighbouring postal code
MOTION: dict[str, tuple[float, float, float]] = {
    "STILL": (0.0, 0.8, 0.0),
    "WALKING": (2.5, 6.5, 0.01),
    "RUNNING": (7.0, 15.0, 0.02),
    "ON_BICYCLE": (10.0, 28.0, 0.04),
    "IN_VEHICLE": (15.0, 120.0, 0.12),
    "UNKNOWN": (0.0, 30.0, 0.02),
}
_ACTIVITY_CHANGE = 0.03


def _default_start() -> dt.datetime:
    return (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10)).replace(microsecond=0)


@dataclass(frozen=True)
class GeneratorConfig:
    """What to generate; every rate is a fraction of the `events` records."""

    events: int
    seed: int = 0
    start_time: dt.datetime = field(default_factory=_default_start)
    rate: float = 50.0  # events per second of event time
    devices: int = 500
    late_rate: float = 0.0
    late_delay: LateDelay = field(default_factory=LateDelay)
    duplicate_rate: float = 0.0
    malformed_rate: float = 0.0
    malformed_reasons: tuple[str, ...] = QUARANTINE_REASONS
    outages: tuple[Outage, ...] = ()
    partition_key: str = "device_id"  # an event field, or "random"
    duplicate_window: int = 1000  # a duplicate re-sends one of this many most recent events

    def __post_init__(self) -> None:
        if self.events < 0 or self.devices < 1 or self.rate <= 0:
            raise ValueError("events must be >= 0, devices >= 1 and rate > 0")
        for name in ("late_rate", "duplicate_rate", "malformed_rate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        if self.duplicate_rate + self.malformed_rate > 1.0:
            raise ValueError("duplicate_rate + malformed_rate must not exceed 1")
        unknown = set(self.malformed_reasons) - set(QUARANTINE_REASONS)
        if unknown or not self.malformed_reasons:
            raise ValueError(f"malformed_reasons must be among {QUARANTINE_REASONS}")
        if self.partition_key != "random" and self.partition_key not in EVENT_FIELD_NAMES:
            raise ValueError("partition_key must be an event field or 'random'")
        if self.start_time.tzinfo is None:
            raise ValueError("start_time must have a time zone")


@dataclass
class _Device:
    device_id: str
    operator: str
    capability: str
    area: int
    activity: str


def _weighted(rng: random.Random, options: tuple[tuple[str, float], ...]) -> str:
    x = rng.random() * sum(w for _, w in options)
    for value, weight in options:
        x -= weight
        if x < 0:
            return value
    return options[-1][0]


class _Fleet:
    """Mutable state of the simulation (devices, coverage), all drawn from one RNG."""

    def __init__(self, config: GeneratorConfig, rng: random.Random) -> None:
        self.rng = rng
        self.config = config
        self.areas: tuple[PostalArea, ...] = postal_areas()
        self.near = neighbours(self.areas)
        area_weights = tuple((str(i), a.weight) for i, a in enumerate(self.areas))
        # coverage quality per postal code and operator, in dB added to the typical level
        self.coverage = [
            [rng.gauss(0.0, 4.0) for _ in OPERATORS] for _ in self.areas
        ]  # fmt: skip
        self.cells = [
            [rng.randrange(1, 2**28 - 8) for _ in OPERATORS] for _ in self.areas
        ]  # fmt: skip
        self.devices = [
            _Device(
                device_id=f"dev-{uuid.UUID(int=rng.getrandbits(128), version=4).hex[:16]}",
                operator=_weighted(rng, OPERATORS),
                capability=_weighted(rng, CAPABILITIES),
                area=int(_weighted(rng, area_weights)),
                activity=_weighted(rng, ACTIVITIES),
            )
            for _ in range(config.devices)
        ]
        self.operator_index = {name: i for i, (name, _) in enumerate(OPERATORS)}

    def payload(self, event_time: dt.datetime) -> dict[str, Any]:
        rng = self.rng
        device = self.devices[rng.randrange(len(self.devices))]
        if rng.random() < _ACTIVITY_CHANGE:
            device.activity = _weighted(rng, ACTIVITIES)
        low, high, hop = MOTION[device.activity]
        if rng.random() < hop:
            device.area = rng.choice(self.near[device.area])
        area = self.areas[device.area]
        op = self.operator_index[device.operator]

        network = device.capability if rng.random() < 0.85 else _FALLBACK[device.capability]
        mean, sd, floor, ceiling = SIGNAL_DBM[network]
        signal = round(rng.gauss(mean + self.coverage[device.area][op], sd))
        signal = max(floor, min(ceiling, signal))
        status = "IN_SERVICE"
        if signal <= -125 and rng.random() < 0.5:
            status = "OUT_OF_SERVICE"
        elif rng.random() < 0.01:
            status = "EMERGENCY_ONLY"
        elif rng.random() < 0.003:
            status = "POWER_OFF"
        for outage in self.config.outages:
            if outage.covers(area.code, event_time):
                signal = max(-150, min(-121, round(rng.gauss(-136.0, 6.0))))
                status = "OUT_OF_SERVICE" if rng.random() < 0.85 else "EMERGENCY_ONLY"
                break

        provider = _weighted(rng, PROVIDERS)
        median, log_sd, p_min, p_max = PRECISION_M[provider]
        precision = round(min(p_max, max(p_min, median * math.exp(rng.gauss(0.0, log_sd)))), 1)
        satellites = None
        if provider == "gps":
            satellites = rng.randint(6, 22)
        elif provider == "fused":
            satellites = rng.randint(0, 14)
        speed = None if device.activity == "UNKNOWN" else round(rng.uniform(low, high), 1)
        cell_id = None
        if rng.random() < 0.93:
            # 5G NR cell identity has 36 bits; the others fit in 28
            base = self.cells[device.area][op] * (256 if network == "5G" else 1)
            cell_id = base + rng.randrange(3)
        return {
            "event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "device_id": device.device_id,
            "event_time": event_time,
            "operator": device.operator,
            "network_type": network,
            "signal_dbm": signal,
            "provider": provider,
            "gps_precision_m": precision,
            "latitude": round(area.latitude + rng.gauss(0.0, 0.004), 6),
            "longitude": round(area.longitude + rng.gauss(0.0, 0.005), 6),
            "postal_code": area.code,
            "status": status,
            "activity": device.activity,
            "speed_kmh": speed,
            "satellites": satellites,
            "cell_id": cell_id,
        }


def _partition_key(payload: dict[str, Any], field_name: str, rng: random.Random) -> str:
    if field_name == "random":
        return f"{rng.getrandbits(64):016x}"
    return str(payload[field_name])


def generate_events(config: GeneratorConfig) -> Iterator[dict[str, Any]]:
    """Valid event payloads only (the config without duplicates or malformed records)."""
    clean = dataclasses.replace(config, duplicate_rate=0.0, malformed_rate=0.0)
    for record in generate_records(clean):
        yield json.loads(record.data)


def generate_records(config: GeneratorConfig) -> Iterator[GeneratedRecord]:
    """`config.events` stream records in send order, deterministic for `config.seed`.

    Record i describes the moment start_time + i / rate; a late event's event_time is behind that
    by a `late_delay` sample. A duplicate re-sends a recent event byte for byte (a phone retrying);
    a malformed record is a fresh event broken in one way (see `core.malformed`).
    """
    rng = random.Random(config.seed)
    fleet = _Fleet(config, rng)
    recent: deque[GeneratedRecord] = deque(maxlen=config.duplicate_window)
    step = dt.timedelta(seconds=1.0 / config.rate)
    for i in range(config.events):
        draw = rng.random()
        if recent and draw < config.duplicate_rate:
            original = recent[rng.randrange(len(recent))]
            yield GeneratedRecord(
                data=original.data,
                partition_key=original.partition_key,
                kind="duplicate",
                event_id=original.event_id,
            )
            continue
        event_time = config.start_time + i * step
        if config.late_rate and rng.random() < config.late_rate:
            event_time -= dt.timedelta(seconds=config.late_delay.sample(rng))
        payload = fleet.payload(
            event_time.replace(microsecond=event_time.microsecond // 1000 * 1000)
        )
        canonical = event_to_json(validate_event(payload))
        key = _partition_key(payload, config.partition_key, rng)
        if draw < config.duplicate_rate + config.malformed_rate and draw >= config.duplicate_rate:
            reason = config.malformed_reasons[rng.randrange(len(config.malformed_reasons))]
            data = malformed_record(canonical, reason, rng)
            yield GeneratedRecord(
                data=data,
                partition_key=key,
                kind="malformed",
                reason=reason,
                event_id=readable_event_id(data),
            )
            continue
        record = GeneratedRecord(data=canonical, partition_key=key, event_id=payload["event_id"])
        recent.append(record)
        yield record
