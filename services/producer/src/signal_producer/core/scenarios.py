"""Scenario parameters of the generator: outages and late-arrival delay distributions."""

from __future__ import annotations

import datetime as dt
import random
import re
from dataclasses import dataclass


class ScenarioError(ValueError):
    """A scenario specification that cannot be parsed."""


@dataclass(frozen=True)
class Outage:
    """Signal collapse (OUT_OF_SERVICE) in some postal codes during [start, end)."""

    postal_codes: frozenset[str]
    start: dt.datetime
    end: dt.datetime

    def covers(self, postal_code: str, event_time: dt.datetime) -> bool:
        """Whether an event at this place and time falls in the outage."""
        return postal_code in self.postal_codes and self.start <= event_time < self.end


_OFFSET = re.compile(r"^\+(\d+(?:\.\d+)?)([smh])$")
_UNIT_SECONDS = {"s": 1.0, "m": 60.0, "h": 3600.0}


def parse_instant(text: str, *, origin: dt.datetime) -> dt.datetime:
    """An ISO-8601 instant (UTC if no zone), or `+N[s|m|h]` after `origin`."""
    text = text.strip()
    match = _OFFSET.match(text)
    if match:
        return origin + dt.timedelta(seconds=float(match[1]) * _UNIT_SECONDS[match[2]])
    try:
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ScenarioError(f"{text!r} is neither ISO-8601 nor +N[s|m|h]") from None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def parse_outage(spec: str, *, origin: dt.datetime) -> Outage:
    """Parse `POSTAL1,POSTAL2@START/END` (START/END ISO-8601 or `+N[s|m|h]` after `origin`)."""
    try:
        codes_part, window = spec.split("@", 1)
        start_text, end_text = window.split("/", 1)
    except ValueError:
        raise ScenarioError(f"outage {spec!r}: expected POSTAL1,POSTAL2@START/END") from None
    codes = frozenset(c.strip() for c in codes_part.split(",") if c.strip())
    if not codes:
        raise ScenarioError(f"outage {spec!r}: no postal codes")
    start = parse_instant(start_text, origin=origin)
    end = parse_instant(end_text, origin=origin)
    if end <= start:
        raise ScenarioError(f"outage {spec!r}: end is not after start")
    return Outage(codes, start, end)


@dataclass(frozen=True)
class LateDelay:
    """How far behind its send position a late event's event_time is.

    kinds: `exp` (exponential, mean a seconds), `uniform` (a..b seconds), `fixed` (a seconds),
    `mix` (80 % exponential with mean a seconds, 20 % uniform between b and c seconds: the phone
    that was offline for hours).
    """

    kind: str = "mix"
    a: float = 120.0
    b: float = 3600.0
    c: float = 6 * 3600.0

    def sample(self, rng: random.Random) -> float:
        """One delay in seconds."""
        if self.kind == "exp":
            return rng.expovariate(1.0 / self.a)
        if self.kind == "uniform":
            return rng.uniform(self.a, self.b)
        if self.kind == "fixed":
            return self.a
        if rng.random() < 0.8:
            return rng.expovariate(1.0 / self.a)
        return rng.uniform(self.b, self.c)


def parse_late_delay(spec: str) -> LateDelay:
    """Parse `mix`, `mix:MEAN:MIN:MAX`, `exp:MEAN`, `uniform:MIN:MAX` or `fixed:S` (seconds)."""
    kind, *args = spec.strip().split(":")
    try:
        numbers = [float(a) for a in args]
    except ValueError:
        raise ScenarioError(f"late delay {spec!r}: arguments must be numbers") from None
    arity = {"mix": (0, 3), "exp": (1,), "uniform": (2,), "fixed": (1,)}
    if kind not in arity or len(numbers) not in arity[kind]:
        raise ScenarioError(
            f"late delay {spec!r}: use mix, mix:MEAN:MIN:MAX, exp:MEAN, uniform:MIN:MAX, fixed:S"
        )
    if any(n < 0 for n in numbers) or (kind == "exp" and numbers[0] == 0):
        raise ScenarioError(f"late delay {spec!r}: seconds must be positive")
    if kind == "uniform" and numbers[1] < numbers[0]:
        raise ScenarioError(f"late delay {spec!r}: MAX < MIN")
    if kind == "mix" and numbers and (numbers[0] == 0 or numbers[2] < numbers[1]):
        raise ScenarioError(f"late delay {spec!r}: MEAN must be > 0 and MAX >= MIN")
    return LateDelay(kind, *numbers) if numbers else LateDelay(kind)
