"""What the evaluator hands to delivery: one alert transition (firing or resolved)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

# of the lifecycle's states (inactive, pending, firing, resolved), the ones ever notified
NOTIFIED_STATES = ("firing", "resolved")


def alert_id(rule: str, area_kind: str, area: str) -> str:
    """The stable identity of an alert: one rule over one area."""
    return f"{rule}:{area_kind}:{area}"


@dataclass(frozen=True)
class Transition:
    """An alert that changed state at one evaluation time."""

    alert_id: str  # stable: f"{rule}:{area_kind}:{area}" e.g. "coverage_hole:postal_code:10115"
    rule: str  # out_of_service | signal_drop | coverage_hole
    area_kind: str  # "postal_code" (later "h3_7"/"h3_9")
    area: str
    state: str  # "firing" | "resolved"  (pending is never notified)
    previous: str  # pending | firing | resolved | inactive
    at: datetime  # evaluation time (UTC, tz-aware) the transition happened
    since: datetime  # when the current episode started (first pending)
    measures: Mapping[str, float]  # e.g. {"weak_share": 0.31, "events": 240, "devices": 12}
    summary: str  # one human sentence
    correction: bool = False  # True when late data re-evaluated a past window

    @property
    def key(self) -> str:
        """The deduplication key of one transition (same alert, state and episode)."""
        return f"{self.alert_id}|{self.state}|{self.since.isoformat()}"


class TransitionNotifier(Protocol):
    """What the evaluator needs of delivery: hand it the transitions it just wrote."""

    def deliver(self, transitions: Sequence[Transition]) -> Any: ...
