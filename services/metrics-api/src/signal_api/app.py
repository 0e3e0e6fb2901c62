"""The FastAPI application: routes → service functions → query engine, behind cache and auth."""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, FastAPI, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from starlette.types import ASGIApp, Receive, Scope, Send

from signal_api import __version__
from signal_api.adapters.engine import QueryEngine, columns_of
from signal_api.core import queries, service
from signal_api.core.alerts import AlertThresholds
from signal_api.core.auth import KeyRing
from signal_api.core.cache import ResultCache
from signal_api.core.errors import ApiError, EngineError, InvalidParameterError
from signal_api.core.models import (
    AlertsResponse,
    CoverageResponse,
    ErrorResponse,
    GpsPrecisionResponse,
    PipelineResponse,
    SignalQualityResponse,
    SignalStrengthResponse,
    StatusCountsResponse,
    SummaryResponse,
)
from signal_api.core.params import (
    GRANULARITIES,
    Granularity,
    as_utc,
    filter_values,
    granularity_range,
    instant,
    retry_after_seconds,
    time_range,
)
from signal_api.core.ratelimit import RateLimiter
from signal_api.core.readiness import Readiness
from signal_api.settings import ApiSettings
from signal_common.schema import NetworkType, Provider, Status

log = logging.getLogger(__name__)

# Allowed values named in 422 messages, per parameter.
ALLOWED: dict[str, tuple[str, ...]] = {
    "granularity": GRANULARITIES,
    "network_type": tuple(v.value for v in NetworkType),
    "provider": tuple(v.value for v in Provider),
    "status": tuple(v.value for v in Status),
}
# Ranges of endpoints without a granularity (they aggregate over the whole range).
MAX_AGGREGATE_RANGE_HOURS = 24 * 31
_ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse, "description": text}
    for code, text in (
        (401, "Missing API key"),
        (403, "Unknown API key"),
        (422, "Invalid parameter (names the parameter and the allowed values)"),
        (429, "Rate limit exceeded (see Retry-After)"),
        (503, "Query engine unavailable"),
        (504, "Query engine timed out"),
    )
}

Engine = QueryEngine
FromParam = Annotated[
    dt.datetime | None,
    Query(alias="from", description="Range start, ISO-8601 (default: one hour before `to`)."),
]
ToParam = Annotated[
    dt.datetime | None,
    Query(description="Range end (exclusive), ISO-8601 (default: end of the current minute)."),
]
GranularityParam = Annotated[Granularity, Query(description="Bucket width: 1m, 5m, 15m, 1h or 1d.")]
OperatorParam = Annotated[list[str] | None, Query(description="Operator (repeatable).")]
NetworkParam = Annotated[list[NetworkType] | None, Query(description="Network type (repeatable).")]
PostalParam = Annotated[list[str] | None, Query(description="Postal code (repeatable).")]


class Metrics:
    """The app's Prometheus metrics, in their own registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "signal_api_requests", "HTTP requests.", ["route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "signal_api_request_seconds",
            "HTTP request latency.",
            ["route"],
            registry=self.registry,
        )
        self.cache = Counter(
            "signal_api_cache", "Cache lookups by outcome.", ["outcome"], registry=self.registry
        )
        self.queries = Histogram(
            "signal_api_query_seconds", "Engine query latency.", ["query"], registry=self.registry
        )
        self.query_errors = Counter(
            "signal_api_query_errors",
            "Engine query errors.",
            ["query", "code"],
            registry=self.registry,
        )


class _MetricsMiddleware:
    """Counts requests and latency per route (pure ASGI: cheap on the hot path)."""

    def __init__(self, app: ASGIApp, metrics: Metrics, known_paths: frozenset[str]) -> None:
        self.app = app
        self.metrics = metrics
        self.known_paths = known_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        route = scope["path"] if scope["path"] in self.known_paths else "unmatched"
        status = {"code": 500}
        started = time.perf_counter()

        async def send_wrapper(message: Any) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            self.metrics.latency.labels(route).observe(time.perf_counter() - started)
            self.metrics.requests.labels(route, str(status["code"])).inc()


def _error(
    status: int,
    code: str,
    message: str,
    *,
    parameter: str | None = None,
    allowed: list[str] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {"code": code, "message": message}
    if parameter is not None:
        body["parameter"] = parameter
    if allowed is not None:
        body["allowed"] = allowed
    return JSONResponse({"error": body}, status_code=status, headers=headers)


API_KEY_HEADER = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="API key (sent as X-API-Key)."
)


@dataclass(frozen=True)
class _Access:
    """What the `client` dependency needs (kept on app.state)."""

    auth_enabled: bool
    keys: KeyRing
    limiter: RateLimiter


def _json_default(value: object) -> str:
    if isinstance(value, dt.datetime):
        return value.isoformat().replace("+00:00", "Z")
    raise TypeError(f"cannot encode {type(value).__name__}")


class _Rendered:
    """A result and its JSON encodings: a cache hit costs no serialization at all.

    Encoded with the C json encoder rather than through the pydantic models (which document the
    responses, and which the tests validate every response against): a 24 h / 1m series has
    ~25k rows and model validation would double the uncached latency.
    """

    def __init__(self, payload: dict[str, Any]) -> None:
        self.payload = {("from" if k == "from_" else k): v for k, v in payload.items()}
        self._bodies: dict[tuple[bool, bool], bytes] = {}

    def body(self, stale: bool, cached: bool) -> bytes:
        """The response body with its `meta` marker."""
        key = (stale, cached)
        if key not in self._bodies:
            document = {**self.payload, "meta": {"stale": stale, "cached": cached}}
            # Pre-encoded values (service.EncodedJson) are written as placeholders, then spliced.
            fragments: dict[str, str] = {}
            for name, value in document.items():
                if isinstance(value, service.EncodedJson):
                    marker = f"\x00fragment:{name}\x00"
                    fragments[json.dumps(marker)] = value.text
                    document[name] = marker
            text = json.dumps(
                document, default=_json_default, separators=(",", ":"), allow_nan=False
            )
            for marker, fragment in fragments.items():
                text = text.replace(marker, fragment, 1)
            self._bodies[key] = text.encode()
        return self._bodies[key]


class _AuthError(Exception):
    def __init__(self, status: int, code: str, message: str, retry_after: int | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.retry_after = status, code, message, retry_after


async def client(request: Request, api_key: Annotated[str | None, Depends(API_KEY_HEADER)]) -> str:
    """Authenticates the caller and applies its rate limit; returns the caller's name.

    Async on purpose: a sync dependency would cost a thread-pool hop on every request."""
    access: _Access = request.app.state.access
    if access.auth_enabled:
        if not api_key:
            raise _AuthError(401, "missing_api_key", "send an API key in the X-API-Key header")
        name = access.keys.name_of(api_key)
        if name is None:
            raise _AuthError(403, "unknown_api_key", "the API key is not recognised")
    else:
        name = f"ip:{request.client.host if request.client else 'unknown'}"
    wait = access.limiter.acquire(name)
    if wait > 0:
        seconds = retry_after_seconds(wait)
        raise _AuthError(429, "rate_limited", f"rate limit exceeded; retry in {seconds} s", seconds)
    return name


def create_app(
    settings: ApiSettings,
    engine: QueryEngine,
    *,
    clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    monotonic: Callable[[], float] = time.monotonic,
) -> FastAPI:
    """The API wired to a query engine (the caller owns and closes the engine)."""
    metrics = Metrics()
    cache = ResultCache(
        ttl_s=settings.cache_ttl_s, max_entries=settings.cache_max_entries, clock=monotonic
    )
    limiter = RateLimiter(
        per_minute=settings.rate_limit_per_minute, burst=settings.rate_limit_burst, clock=monotonic
    )
    keys = KeyRing.parse(settings.api_keys_sha256)
    thresholds = AlertThresholds(
        recent_minutes=settings.alert_recent_minutes,
        baseline_minutes=settings.alert_baseline_minutes,
        out_of_service_share=settings.alert_out_of_service_share,
        signal_drop_db=settings.alert_signal_drop_db,
        min_events=settings.alert_min_events,
    )

    readiness = Readiness(ttl_s=settings.ready_cache_s, clock=monotonic)

    async def run(query: queries.Query) -> list[dict[str, Any]]:
        started = time.perf_counter()
        try:
            rows = await anyio.to_thread.run_sync(engine.run, query)
        except EngineError as exc:
            metrics.query_errors.labels(query.name, exc.code).inc()
            readiness.failed()
            raise
        finally:
            metrics.queries.labels(query.name).observe(time.perf_counter() - started)
        readiness.succeeded()
        return rows

    engine_columns = getattr(engine, "run_columns", None)

    def fetch_columns(query: queries.Query) -> dict[str, list[Any]]:
        if engine_columns is not None:
            return engine_columns(query)
        return columns_of(engine.run(query))

    async def run_columns(query: queries.Query) -> dict[str, list[Any]]:
        """As `run`, one list per column (engines without `run_columns` have their rows
        transposed)."""
        started = time.perf_counter()
        try:
            return await anyio.to_thread.run_sync(fetch_columns, query)
        except EngineError as exc:
            metrics.query_errors.labels(query.name, exc.code).inc()
            raise
        finally:
            metrics.queries.labels(query.name).observe(time.perf_counter() - started)

    async def cached(
        key: tuple[Hashable, ...], compute: Callable[[], Awaitable[dict[str, Any]]]
    ) -> Response:
        async def rendered() -> _Rendered:
            return _Rendered(await compute())

        result = await cache.get(key, rendered)
        metrics.cache.labels("stale" if result.stale else "hit" if result.hit else "miss").inc()
        return Response(result.value.body(result.stale, result.hit), media_type="application/json")

    def now() -> dt.datetime:
        return as_utc(clock())

    def rounded_now() -> dt.datetime:
        """Now, floored to the cache TTL so default requests share cache entries."""
        current = now()
        step = max(1, int(settings.cache_ttl_s))
        epoch = int(current.timestamp()) // step * step
        return dt.datetime.fromtimestamp(epoch, dt.UTC)

    def filters(name: str, values: list[Any] | None, *, max_length: int = 64) -> tuple[str, ...]:
        return filter_values(
            name,
            [str(v.value if hasattr(v, "value") else v) for v in values or []],
            max_values=settings.max_filter_values,
            max_length=max_length,
        )

    app = FastAPI(
        title="Signal Stream Metrics API",
        version=__version__,
        description=(
            "Network KPIs computed from the lake's partial aggregates (Σsum/Σcount, never an "
            "average of averages). Time ranges are half-open [from, to) over 1-minute window "
            "starts (UTC). Send `X-API-Key` unless auth is disabled."
        ),
    )
    app.state.access = _Access(settings.auth_enabled, keys, limiter)
    app.state.engine = engine
    app.state.cache = cache
    app.state.metrics = metrics

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        if isinstance(exc, InvalidParameterError):
            return _error(
                exc.status_code,
                exc.code,
                exc.message,
                parameter=exc.parameter,
                allowed=exc.allowed,
            )
        return _error(exc.status_code, exc.code, exc.message)

    @app.exception_handler(_AuthError)
    async def _auth_error(_: Request, exc: _AuthError) -> JSONResponse:
        headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after else None
        if exc.status == 401:
            headers = {"WWW-Authenticate": "APIKey"}
        return _error(exc.status, exc.code, exc.message, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        first = errors[0] if errors else {"loc": ("query", "?"), "msg": "invalid request"}
        loc = [str(p) for p in first.get("loc", ()) if not isinstance(p, int)]
        parameter = loc[-1] if loc else "?"
        allowed = ALLOWED.get(parameter)
        if allowed is not None:
            message = f"parameter '{parameter}' must be one of: {', '.join(allowed)}"
        else:
            message = f"parameter '{parameter}': {first.get('msg', 'invalid value')}"
        return _error(
            422,
            "invalid_parameter",
            message,
            parameter=parameter,
            allowed=list(allowed) if allowed else None,
        )

    v1 = APIRouter(responses=_ERROR_RESPONSES, dependencies=[Depends(client)])

    @v1.get("/kpis/signal-strength", response_model=SignalStrengthResponse)
    async def signal_strength(
        from_: FromParam = None,
        to: ToParam = None,
        granularity: GranularityParam = Granularity.M1,
        operator: OperatorParam = None,
        network_type: NetworkParam = None,
        by_network_type: Annotated[
            bool, Query(description="Split each operator by network type.")
        ] = True,
    ) -> Response:
        """Average/min/max signal strength (dBm) and event count per operator per time bucket."""
        window = granularity_range(
            from_, to, granularity, now=now(), limits_hours=settings.range_limits_hours
        )
        ops, nets = filters("operator", operator), filters("network_type", network_type)
        return await cached(
            ("signal_strength", window, granularity, ops, nets, by_network_type),
            lambda: service.signal_strength(
                run_columns,
                window,
                granularity,
                operators=ops,
                network_types=nets,
                by_network_type=by_network_type,
            ),
        )

    @v1.get("/kpis/gps-precision", response_model=GpsPrecisionResponse)
    async def gps_precision(
        from_: FromParam = None,
        to: ToParam = None,
        granularity: GranularityParam = Granularity.M1,
        provider: Annotated[
            list[Provider] | None, Query(description="Location provider (repeatable).")
        ] = None,
    ) -> Response:
        """Average/min/max GPS precision (m) and event count per provider per time bucket."""
        window = granularity_range(
            from_, to, granularity, now=now(), limits_hours=settings.range_limits_hours
        )
        providers = filters("provider", provider)
        return await cached(
            ("gps_precision", window, granularity, providers),
            lambda: service.gps_precision(run, window, granularity, providers=providers),
        )

    @v1.get("/kpis/status-counts", response_model=StatusCountsResponse)
    async def status_counts(
        from_: FromParam = None,
        to: ToParam = None,
        granularity: GranularityParam = Granularity.M1,
        postal_code: PostalParam = None,
        status: Annotated[
            list[Status] | None, Query(description="Service status (repeatable).")
        ] = None,
        top: Annotated[
            int | None,
            Query(ge=1, le=1000, description="Keep the N postal codes with most OUT_OF_SERVICE."),
        ] = None,
    ) -> Response:
        """Event counts per postal code × status per time bucket."""
        window = granularity_range(
            from_, to, granularity, now=now(), limits_hours=settings.range_limits_hours
        )
        codes = filters("postal_code", postal_code, max_length=16)
        statuses = filters("status", status)
        return await cached(
            ("status_counts", window, granularity, codes, statuses, top),
            lambda: service.status_counts(
                run, window, granularity, postal_codes=codes, statuses=statuses, top=top
            ),
        )

    @v1.get("/kpis/signal-quality", response_model=SignalQualityResponse)
    async def signal_quality(
        from_: FromParam = None,
        to: ToParam = None,
        operator: OperatorParam = None,
        network_type: NetworkParam = None,
    ) -> Response:
        """Share of events per signal-quality band per operator × network type over the range."""
        window = time_range(from_, to, now=now(), max_hours=MAX_AGGREGATE_RANGE_HOURS)
        ops, nets = filters("operator", operator), filters("network_type", network_type)
        return await cached(
            ("signal_quality", window, ops, nets),
            lambda: service.signal_quality(run, window, operators=ops, network_types=nets),
        )

    @v1.get("/coverage", response_model=CoverageResponse)
    async def coverage(
        from_: FromParam = None,
        to: ToParam = None,
        postal_code: PostalParam = None,
    ) -> Response:
        """Per postal code over the range: centroid, events, avg signal, out-of-service share."""
        window = time_range(from_, to, now=now(), max_hours=MAX_AGGREGATE_RANGE_HOURS)
        codes = filters("postal_code", postal_code, max_length=16)
        return await cached(
            ("coverage", window, codes),
            lambda: service.coverage(run, window, postal_codes=codes),
        )

    @v1.get("/alerts", response_model=AlertsResponse)
    async def alerts(
        at: Annotated[
            dt.datetime | None, Query(description="Evaluate as of this time (default: now).")
        ] = None,
        postal_code: PostalParam = None,
    ) -> Response:
        """Postal codes in trouble now: out-of-service share or signal drop above thresholds."""
        moment = instant("at", at) if at is not None else rounded_now()
        codes = filters("postal_code", postal_code, max_length=16)
        return await cached(
            ("alerts", moment.replace(second=0, microsecond=0), codes),
            lambda: service.alerts(run, moment, thresholds, postal_codes=codes),
        )

    @v1.get("/summary", response_model=SummaryResponse)
    async def summary(
        at: Annotated[
            dt.datetime | None, Query(description="Evaluate as of this time (default: now).")
        ] = None,
    ) -> Response:
        """The latest complete 1-minute window: events/min, avg signal, out-of-service share."""
        moment = instant("at", at) if at is not None else rounded_now()
        return await cached(
            ("summary", moment),
            lambda: service.summary(
                run,
                moment,
                lookback_hours=settings.summary_lookback_hours,
                complete_after_s=settings.complete_after_s,
            ),
        )

    @v1.get("/pipeline", response_model=PipelineResponse)
    async def pipeline(
        from_: FromParam = None,
        to: ToParam = None,
    ) -> Response:
        """Pipeline health from pipeline_batches: freshness, throughput, quarantine, dedup."""
        window = time_range(from_, to, now=now(), max_hours=MAX_AGGREGATE_RANGE_HOURS)
        moment = rounded_now()
        return await cached(
            ("pipeline", window, moment),
            lambda: service.pipeline(run, window, at=moment),
        )

    app.include_router(v1, prefix="/v1")

    @app.get("/healthz", tags=["ops"])
    async def healthz() -> dict[str, str]:
        """Process liveness."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"], responses={503: {"model": ErrorResponse}})
    async def readyz() -> dict[str, str]:
        """Readiness: the engine answered within `ready_cache_s`, else a trivial query."""
        cached = await readiness.check(lambda: run(queries.ping()))
        return {"status": "ready", "engine": engine.name, "checked": "cached" if cached else "now"}

    @app.get("/metrics", tags=["ops"], response_class=Response)
    async def prometheus_metrics() -> Response:
        """Prometheus metrics."""
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    known = frozenset(
        path
        for prefix, routes in (("", app.routes), ("/v1", v1.routes))
        for r in routes
        if isinstance(path := prefix + str(getattr(r, "path", "")), str)
    )
    app.add_middleware(_MetricsMiddleware, metrics=metrics, known_paths=known)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET"],
            allow_headers=["X-API-Key"],
        )
    return app
