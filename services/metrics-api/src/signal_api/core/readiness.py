"""Readiness: whether the lake can be read, from the data queries' outcomes and a probe.

- A data query that succeeded within `ttl_s` proves readiness, so a probe rarely costs a query
  (in AWS each one is an Athena query).
- After a failure the next check runs the probe (the caller's: it reads the newest partitions
  of the lake), one at a time whatever the number of callers, who share its outcome: its error
  (a 503 with the reason) or a proof that lasts `ttl_s`.
- `failure_threshold` data queries failing in a row withdraw readiness, whatever the probe
  says (it reads other partitions than the queries that failed). Each check then re-runs the
  query that failed last, and its success restores readiness as any data query's does; its
  error is the answer. When the failed query is not known, checks answer NotReadyError until a
  data query succeeds or `ttl_s` passes without a failure (then the probe decides, so an
  instance nobody sends queries to can come back).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from signal_api.core.errors import NotReadyError
from signal_api.core.queries import Query


class Readiness:
    """The lake's readiness: the time of its last proof, and the data queries failed since."""

    def __init__(
        self, *, ttl_s: float, clock: Callable[[], float], failure_threshold: int = 1
    ) -> None:
        self._ttl_s = ttl_s
        self._failure_threshold = failure_threshold
        self._clock = clock
        self._ok_at: float | None = None
        self._failures = 0
        self._failed_at = 0.0
        self._failed_query: Query | None = None
        self._last_error: str | None = None
        self._check: asyncio.Future[None] | None = None

    def succeeded(self) -> None:
        """A data query answered: readiness is proven and the failures are cleared."""
        self._ok_at = self._clock()
        self._failures = 0
        self._failed_query = None
        self._last_error = None

    def failed(self, query: Query | None = None, error: BaseException | None = None) -> None:
        """A data query failed: the proof is withdrawn and the failure counted."""
        self._ok_at = None
        self._failures += 1
        self._failed_at = self._clock()
        self._failed_query = query
        self._last_error = None if error is None else f"{getattr(error, 'code', '')}: {error}"

    @property
    def withdrawn(self) -> bool:
        """Whether `failure_threshold` data queries failed in a row, with none succeeding since."""
        return self._failures >= self._failure_threshold

    def _fresh(self) -> bool:
        return self._ok_at is not None and self._clock() - self._ok_at <= self._ttl_s

    async def check(
        self,
        probe: Callable[[], Awaitable[object]],
        *,
        retry: Callable[[Query], Awaitable[object]],
    ) -> bool:
        """True when a recent success proves readiness; else runs `probe`, or `retry` on the
        query that failed last while readiness is withdrawn (each raises when the lake cannot
        be read; concurrent callers share one run), and returns False."""
        if not self.withdrawn and self._fresh():
            return True
        if self._check is None:
            self._check = asyncio.ensure_future(self._run(probe, retry))
            # the error is re-raised to every waiter; mark it seen should they all have gone
            self._check.add_done_callback(lambda f: f.cancelled() or f.exception())
        # shield: one caller going away must not cancel the run the others wait for
        await asyncio.shield(self._check)
        return False

    async def _run(
        self, probe: Callable[[], Awaitable[object]], retry: Callable[[Query], Awaitable[object]]
    ) -> None:
        try:
            if not self.withdrawn:
                await probe()
                self._ok_at = self._clock()
                return
            query = self._failed_query
            if query is not None:
                try:
                    await retry(query)
                except Exception as exc:
                    self.failed(query, exc)
                    raise
                self.succeeded()
                return
            if self._clock() - self._failed_at <= self._ttl_s:
                last = f" (last: {self._last_error})" if self._last_error else ""
                raise NotReadyError(
                    f"{self._failures} data queries failed in a row{last}; "
                    "ready again once one succeeds"
                )
            await probe()  # no failure for ttl_s: the probe decides
            self.succeeded()
        finally:
            self._check = None
