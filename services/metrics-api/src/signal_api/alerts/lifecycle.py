"""The alert lifecycle: per (rule, area), window verdicts -> pending -> firing -> resolved.

Pure and deterministic: the same anchor state and the same verdicts give the same states and
transitions, which is what makes a rerun of a cycle idempotent and a re-evaluation comparable.

- inactive or resolved + breach: pending (since = the window's start), or firing at once when
  the rule fires after one window;
- pending + breach: firing once `fire_after` breaching windows are in a row; pending + clear:
  inactive (recorded, never notified);
- firing + clear: resolved after `resolve_after` clear windows in a row (hysteresis: one clear
  window in a flapping area does not resolve it, and a breach resets the count);
- unknown (too few samples) changes nothing: an area that stops reporting keeps its state.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from signal_api.alerts.rules import Verdict


@dataclass(frozen=True)
class AlertState:
    """One alert after one window."""

    alert_id: str
    rule: str
    area_kind: str
    area: str
    state: str  # inactive | pending | firing | resolved
    window_end: dt.datetime
    since: dt.datetime | None = None
    breaches: int = 0
    clears: int = 0
    measures: Mapping[str, float] = field(default_factory=dict)

    @property
    def active(self) -> bool:
        return self.state in ("pending", "firing")


@dataclass(frozen=True)
class Step:
    """A state change caused by one window's verdict."""

    alert_id: str
    window_end: dt.datetime
    previous: str
    state: str
    since: dt.datetime
    measures: Mapping[str, float]

    @property
    def key(self) -> str:
        return f"{self.alert_id}|{self.state}|{self.since.isoformat()}"


def step(
    current: AlertState,
    verdict: Verdict,
    *,
    window_end: dt.datetime,
    window: dt.timedelta,
    measures: Mapping[str, float],
    fire_after: int,
    resolve_after: int,
) -> tuple[AlertState, Step | None]:
    """The state after one more window, and the transition it caused (or None)."""
    s = replace(current, window_end=window_end, measures=dict(measures))
    if verdict == "unknown":
        return s, None
    was = current.state
    if was in ("inactive", "resolved"):
        if verdict == "clear":
            return replace(s, state="inactive", since=None, breaches=0, clears=0), None
        since = window_end - window
        new = "firing" if fire_after <= 1 else "pending"
        s = replace(s, state=new, since=since, breaches=1, clears=0)
        return s, Step(s.alert_id, window_end, was, new, since, s.measures)
    assert current.since is not None
    if was == "pending":
        if verdict == "clear":
            s = replace(s, state="inactive", breaches=0, clears=0)
            return s, Step(s.alert_id, window_end, "pending", "inactive", current.since, measures)
        breaches = current.breaches + 1
        if breaches >= fire_after:
            s = replace(s, state="firing", breaches=breaches)
            return s, Step(s.alert_id, window_end, "pending", "firing", current.since, measures)
        return replace(s, breaches=breaches), None
    # firing
    if verdict == "breach":
        return replace(s, breaches=current.breaches + 1, clears=0), None
    clears = current.clears + 1
    if clears >= resolve_after:
        s = replace(s, state="resolved", clears=clears)
        return s, Step(s.alert_id, window_end, "firing", "resolved", current.since, measures)
    return replace(s, clears=clears), None


def replay(
    start: AlertState,
    verdicts: Iterable[tuple[dt.datetime, Verdict, Mapping[str, float]]],
    *,
    window: dt.timedelta,
    fire_after: int,
    resolve_after: int,
) -> tuple[list[AlertState], list[Step]]:
    """The states after each window (in order) and every transition on the way."""
    states: list[AlertState] = []
    steps: list[Step] = []
    current = start
    for window_end, verdict, measures in verdicts:
        current, change = step(
            current,
            verdict,
            window_end=window_end,
            window=window,
            measures=measures,
            fire_after=fire_after,
            resolve_after=resolve_after,
        )
        states.append(current)
        if change is not None:
            steps.append(change)
    return states, steps
