"""Send-time pacing: a target rate (records/s) and/or a replay schedule, for a given clock."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Pacer:
    """When the next record may be sent, in the caller's clock (seconds).

    `target_rps` 0 means unlimited. A replay record carries `offset_s` (seconds after the first
    record at original cadence); it is due `offset_s / speedup` after `start`. A pacer never
    tries to catch up with a burst larger than `burst` records after a stall.
    """

    start: float
    target_rps: float = 0.0
    speedup: float = 0.0  # 0: ignore replay offsets (as fast as possible)
    burst: int = 100
    _next: float | None = None

    def due(self, *, now: float, offset_s: float | None = None) -> float:
        """The clock time at which the next record may be sent; reserves its slot."""
        due = now
        if self.target_rps > 0:
            slot = 1.0 / self.target_rps
            floor = now - self.burst * slot
            self._next = max(self._next if self._next is not None else now, floor)
            due = max(due, self._next)
            self._next += slot
        if self.speedup > 0 and offset_s is not None:
            due = max(due, self.start + offset_s / self.speedup)
        return due
