"""Everything a request handler needs, one per app (wiring.build_context builds it): engine,
cache, limits, clock, and how a request runs its queries through them."""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Awaitable, Callable, Hashable
from contextvars import ContextVar
from dataclasses import dataclass, replace
from typing import Any, TypeVar, overload

import anyio
from fastapi import Response

from signal_api.adapters.engine import QueryEngine, columns_of
from signal_api.core import queries
from signal_api.core.auth import KeyRing
from signal_api.core.cache import ResultCache
from signal_api.core.errors import EngineError, ResultTooLargeError
from signal_api.core.meta import LakeState, Recent, query_meta
from signal_api.core.params import TimeRange, as_utc, filter_values
from signal_api.core.ratelimit import ConcurrencyLimit, RateLimiter
from signal_api.core.readiness import Readiness
from signal_api.observability import Metrics
from signal_api.rendering import Rendered
from signal_api.settings import ApiSettings
from signal_common.quality import QualityBands

T = TypeVar("T")

# The authenticated caller of the current request (set by deps.client): whose concurrency slots
# and rate limit a computation uses. Outside a request: one shared name.
CALLER: ContextVar[str] = ContextVar("signal_api_caller", default="-")
# Rows the current computation has read so far (set by ApiContext.cached, added to by runs).
_ROWS: ContextVar[list[int] | None] = ContextVar("signal_api_rows", default=None)
# The data queries the current computation has run (set by ApiContext.cached): its meta.
_QUERIES: ContextVar[list[queries.Query] | None] = ContextVar("signal_api_queries", default=None)
_TRAILING_LIMIT = re.compile(r"\bLIMIT\s+\d+\s*$", re.IGNORECASE)


def row_capped(query: queries.Query, cap: int) -> queries.Query:
    """`query` returning at most `cap` + 1 rows, so an answer over the cap is refused without
    fetching all of it. A literal LIMIT appended to the text: every `?` stays where it was (in
    WHERE, as Athena requires), and an ORDER BY before it still orders the rows kept."""
    if _TRAILING_LIMIT.search(query.sql):
        return query  # already bounded; the row count is still checked
    return replace(query, sql=f"{query.sql} LIMIT {int(cap) + 1}")


def _row_count(result: Any) -> int:
    if isinstance(result, dict):  # columns
        return len(next(iter(result.values()), ()))
    return len(result)


@dataclass
class ApiContext:
    """The app's collaborators (on `app.state.context`; routes get it through `deps.Context`)."""

    settings: ApiSettings
    engine: QueryEngine
    metrics: Metrics
    cache: ResultCache
    limiter: RateLimiter
    auth_failures: RateLimiter
    concurrency: ConcurrencyLimit
    keys: KeyRing
    readiness: Readiness
    clock: Callable[[], dt.datetime]
    bands: dict[str, QualityBands]
    recent_lake_state: Recent

    @overload
    async def run(self, query: queries.Query) -> list[dict[str, Any]]: ...

    @overload
    async def run(self, query: queries.Query, shape: Callable[[list[dict[str, Any]]], T]) -> T: ...

    async def run(self, query: queries.Query, shape: Callable[[Any], Any] | None = None) -> Any:
        """Rows of a query (capped at `max_response_rows`), shaped by `shape`, both in a worker
        thread; the outcome feeds metrics and readiness."""
        return await self._run(query, self.engine.run, shape)

    @overload
    async def run_columns(self, query: queries.Query) -> dict[str, list[Any]]: ...

    @overload
    async def run_columns(
        self, query: queries.Query, shape: Callable[[dict[str, list[Any]]], T]
    ) -> T: ...

    async def run_columns(
        self, query: queries.Query, shape: Callable[[Any], Any] | None = None
    ) -> Any:
        """As `run`, one list per column (engines without `run_columns` have their rows
        transposed)."""
        return await self._run(query, self._fetch_columns, shape)

    def _fetch_columns(self, query: queries.Query) -> dict[str, list[Any]]:
        engine_columns = getattr(self.engine, "run_columns", None)
        if engine_columns is not None:
            columns: dict[str, list[Any]] = engine_columns(query)
            return columns
        return columns_of(self.engine.run(query))

    async def _run(
        self,
        query: queries.Query,
        fetch: Callable[[queries.Query], Any],
        shape: Callable[[Any], Any] | None,
    ) -> Any:
        cap = self.settings.max_response_rows
        capped = row_capped(query, cap)
        timing = [0.0]

        def work() -> tuple[Any, int]:
            started = time.perf_counter()
            try:
                result = fetch(capped)
            finally:
                timing[0] = time.perf_counter() - started
            rows = _row_count(result)
            if rows > cap:
                return None, rows
            return (result if shape is None else shape(result)), rows

        try:
            value, rows = await anyio.to_thread.run_sync(work)
        except EngineError as exc:
            self.metrics.query_errors.labels(query.name, exc.code).inc()
            self.readiness.failed(capped, exc)
            raise
        finally:
            self.metrics.queries.labels(query.name).observe(timing[0])
        self.readiness.succeeded()
        if rows > cap:
            raise ResultTooLargeError(
                f"the answer has more than {cap:,} rows, the most one response carries; narrow "
                "the request: a coarser granularity, a shorter range (from/to), or filters "
                "(operator, network_type, provider, postal_code, status, top)"
            )
        counter = _ROWS.get()
        if counter is not None:
            counter[0] += rows
        ran = _QUERIES.get()
        if ran is not None:
            ran.append(query)
        return value

    def lake_state_query(self) -> queries.Query:
        """`lake_state` over the batches of the last `summary_lookback_hours` hours (to the end
        of the current hour: a processor clock a little ahead still counts)."""
        hour = self.now().replace(minute=0, second=0, microsecond=0)
        lookback = dt.timedelta(hours=self.settings.summary_lookback_hours)
        return queries.lake_state(TimeRange(hour - lookback, hour + dt.timedelta(hours=1)))

    async def lake_state(self) -> LakeState:
        """The lake's state, read at most once per `cache_ttl_s` (as a data query: its failure
        is the response's, a 503 naming what cannot be read, never a meta silently empty)."""

        async def fetch() -> LakeState:
            return await self.run(self.lake_state_query(), lambda rows: LakeState.of_row(rows[0]))

        state: LakeState = await self.recent_lake_state.get(fetch)
        return state

    async def cached(
        self, key: tuple[Hashable, ...], compute: Callable[[], Awaitable[dict[str, Any]]]
    ) -> Response:
        """The JSON response for `key`: from the cache, or computed once (single flight).

        A computation takes one of the caller's `max_concurrent_per_key` slots, runs its
        queries, shaping and encoding in worker threads, and is charged to the caller's rate
        limit by the rows it read (`rows_per_token`). A hit is a dict lookup and a send."""
        caller = CALLER.get()

        async def rendered() -> Rendered:
            async with self.concurrency.hold(caller):
                # read before the data: the answer holds at least every batch up to the state
                state = await self.lake_state()
                counter, ran = [0], list[queries.Query]()
                rows_token, queries_token = _ROWS.set(counter), _QUERIES.set(ran)
                try:
                    payload = await compute()
                finally:
                    _ROWS.reset(rows_token)
                    _QUERIES.reset(queries_token)
                self.limiter.charge(caller, counter[0] // self.settings.rows_per_token)
                meta = {
                    "watermark": state.watermark,
                    "newest_batch_time": state.newest_batch_time,
                    "queries": [query_meta(query) for query in ran],
                    "min_events": self.settings.min_events,
                    "min_devices": self.settings.min_devices,
                }
                return await anyio.to_thread.run_sync(Rendered.encode, payload, meta)

        result = await self.cache.get(key, rendered)
        outcome = "stale" if result.stale else "hit" if result.hit else "miss"
        self.metrics.cache.labels(outcome).inc()
        value: Rendered = result.value
        return value.response(result.stale, result.hit)

    def now(self) -> dt.datetime:
        """The current time (UTC)."""
        return as_utc(self.clock())

    def rounded_now(self) -> dt.datetime:
        """Now, floored to the cache TTL so default requests share cache entries."""
        current = self.now()
        step = max(1, int(self.settings.cache_ttl_s))
        epoch = int(current.timestamp()) // step * step
        return dt.datetime.fromtimestamp(epoch, dt.UTC)

    def filters(
        self, name: str, values: list[Any] | None, *, max_length: int = 64
    ) -> tuple[str, ...]:
        """A filter parameter's values, validated (count, length) and normalised to strings."""
        return filter_values(
            name,
            [str(v.value if hasattr(v, "value") else v) for v in values or []],
            max_values=self.settings.max_filter_values,
            max_length=max_length,
        )
