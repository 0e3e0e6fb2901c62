"""Readiness from the engine's recent outcomes, so a probe rarely costs a query.

In AWS every load-balancer probe (and any anonymous caller) of `/readyz` used to start an Athena
query. A query that succeeded within `ttl_s` proves the engine answers; a failure since then
withdraws that proof. Otherwise one trivial query runs, one at a time, whatever the number of
callers: the engine sees at most one readiness query per `ttl_s`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable


class Readiness:
    """The engine's readiness: the time of its last success, withdrawn by a failure."""

    def __init__(
        self, *, ttl_s: float, clock: Callable[[], float], failure_threshold: int = 1
    ) -> None:
        self._ttl_s = ttl_s
        self._failure_threshold = failure_threshold
        self._clock = clock
        self._ok_at: float | None = None
        self._lock = asyncio.Lock()

    def succeeded(self) -> None:
        """A query answered."""
        self._ok_at = self._clock()

    def failed(self) -> None:
        """A query failed: readiness must be proven again."""
        self._ok_at = None

    def _fresh(self) -> bool:
        return self._ok_at is not None and self._clock() - self._ok_at <= self._ttl_s

    async def check(self, probe: Callable[[], Awaitable[object]]) -> bool:
        """True when a recent success proves readiness; else runs `probe` (one caller at a time;
        it raises when the engine fails) and returns False."""
        if self._fresh():
            return True
        async with self._lock:
            if self._fresh():  # another caller's probe just succeeded
                return True
            await probe()
            return False
