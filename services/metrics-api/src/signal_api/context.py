"""Everything a request handler needs, built once per app: engine, cache, limits, clock."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Any

import anyio
from fastapi import Response

from signal_api.adapters.engine import QueryEngine, columns_of
from signal_api.core import queries
from signal_api.core.alerts import AlertThresholds
from signal_api.core.auth import KeyRing
from signal_api.core.cache import ResultCache
from signal_api.core.errors import EngineError
from signal_api.core.params import as_utc, filter_values
from signal_api.core.ratelimit import RateLimiter
from signal_api.core.readiness import Readiness
from signal_api.observability import Metrics
from signal_api.rendering import Rendered
from signal_api.settings import ApiSettings


@dataclass
class ApiContext:
    """The app's collaborators (on `app.state.context`; routes get it through `deps.Context`)."""

    settings: ApiSettings
    engine: QueryEngine
    metrics: Metrics
    cache: ResultCache
    limiter: RateLimiter
    keys: KeyRing
    thresholds: AlertThresholds
    readiness: Readiness
    clock: Callable[[], dt.datetime]

    @classmethod
    def build(
        cls,
        settings: ApiSettings,
        engine: QueryEngine,
        *,
        clock: Callable[[], dt.datetime],
        monotonic: Callable[[], float],
    ) -> ApiContext:
        """The context of one app from its settings (the caller owns and closes the engine)."""
        return cls(
            settings=settings,
            engine=engine,
            metrics=Metrics(),
            cache=ResultCache(
                ttl_s=settings.cache_ttl_s, max_entries=settings.cache_max_entries, clock=monotonic
            ),
            limiter=RateLimiter(
                per_minute=settings.rate_limit_per_minute,
                burst=settings.rate_limit_burst,
                clock=monotonic,
            ),
            keys=KeyRing.parse(settings.api_keys_sha256),
            thresholds=AlertThresholds(
                recent_minutes=settings.alert_recent_minutes,
                baseline_minutes=settings.alert_baseline_minutes,
                out_of_service_share=settings.alert_out_of_service_share,
                signal_drop_db=settings.alert_signal_drop_db,
                min_events=settings.alert_min_events,
            ),
            readiness=Readiness(
                ttl_s=settings.ready_cache_s,
                failure_threshold=settings.ready_failure_threshold,
                clock=monotonic,
            ),
            clock=clock,
        )

    async def run(self, query: queries.Query) -> list[dict[str, Any]]:
        """Rows of a query, off the event loop; the outcome feeds metrics and readiness."""
        started = time.perf_counter()
        try:
            rows = await anyio.to_thread.run_sync(self.engine.run, query)
        except EngineError as exc:
            self.metrics.query_errors.labels(query.name, exc.code).inc()
            self.readiness.failed()
            raise
        finally:
            self.metrics.queries.labels(query.name).observe(time.perf_counter() - started)
        self.readiness.succeeded()
        return rows

    def _fetch_columns(self, query: queries.Query) -> dict[str, list[Any]]:
        engine_columns = getattr(self.engine, "run_columns", None)
        if engine_columns is not None:
            columns: dict[str, list[Any]] = engine_columns(query)
            return columns
        return columns_of(self.engine.run(query))

    async def run_columns(self, query: queries.Query) -> dict[str, list[Any]]:
        """As `run`, one list per column (engines without `run_columns` have their rows
        transposed)."""
        started = time.perf_counter()
        try:
            columns = await anyio.to_thread.run_sync(self._fetch_columns, query)
        except EngineError as exc:
            self.metrics.query_errors.labels(query.name, exc.code).inc()
            self.readiness.failed()
            raise
        finally:
            self.metrics.queries.labels(query.name).observe(time.perf_counter() - started)
        self.readiness.succeeded()
        return columns

    async def cached(
        self, key: tuple[Hashable, ...], compute: Callable[[], Awaitable[dict[str, Any]]]
    ) -> Response:
        """The JSON response for `key`: from the cache, or computed once (single flight)."""

        async def rendered() -> Rendered:
            return Rendered(await compute())

        result = await self.cache.get(key, rendered)
        outcome = "stale" if result.stale else "hit" if result.hit else "miss"
        self.metrics.cache.labels(outcome).inc()
        return Response(result.value.body(result.stale, result.hit), media_type="application/json")

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
