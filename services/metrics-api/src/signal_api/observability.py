"""Prometheus metrics of the API (and the ASGI middleware that counts requests per route) and of
the alert evaluator (its cycles and deliveries, served on its own port: `serve_metrics`)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from starlette.types import ASGIApp, Receive, Scope, Send

if TYPE_CHECKING:
    from collections.abc import Iterable
    from wsgiref.simple_server import WSGIServer


class _Sized(Protocol):
    @property
    def nbytes(self) -> int: ...

    def __len__(self) -> int: ...


class AlertDeliveryMetrics:
    """The counters alert delivery (signal_api.alerts.delivery) keeps, in `registry`."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        # exposed as ..._total
        self.alert_notifications = Counter(
            "signal_alert_notifications",
            "Alert notifications by destination and outcome (sent, duplicate, retry, dead, "
            "refresh, refresh_failed).",
            ["destination", "outcome"],
            registry=self.registry,
        )
        self.alert_dead_letters = Counter(
            "signal_alert_dead_letters",
            "Alert notifications dead-lettered after their retries.",
            ["destination"],
            registry=self.registry,
        )


class Metrics(AlertDeliveryMetrics):
    """The app's Prometheus metrics, in their own registry."""

    def __init__(self) -> None:
        super().__init__(CollectorRegistry())
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
        self.cache_bytes = Gauge(
            "signal_api_cache_bytes", "Bytes the result cache holds.", registry=self.registry
        )
        self.cache_entries = Gauge(
            "signal_api_cache_entries", "Entries the result cache holds.", registry=self.registry
        )

    def watch_cache(self, cache: _Sized) -> None:
        """Report `cache`'s size (read at scrape time: nothing on the request path)."""
        self.cache_bytes.set_function(lambda: cache.nbytes)
        self.cache_entries.set_function(lambda: len(cache))


class EvaluatorMetrics(AlertDeliveryMetrics):
    """The alert evaluator's metrics (`signal-api alerts evaluate`): its cycles and, through the
    notifier it builds, its deliveries and dead letters, in one registry of its own."""

    def __init__(self) -> None:
        super().__init__(CollectorRegistry())
        self.cycles = Counter(
            "signal_alert_cycles",
            "Evaluator cycles by outcome (committed; already_committed: committed by an "
            "earlier run, only delivery ran; failed).",
            ["outcome"],
            registry=self.registry,
        )
        self.cycle_seconds = Histogram(
            "signal_alert_cycle_seconds",
            "Time of one evaluator cycle (read, replay, commit, deliver).",
            buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120),
            registry=self.registry,
        )
        self.transitions = Counter(
            "signal_alert_transitions",
            "Transitions the evaluator recorded, by rule and new state.",
            ["rule", "state", "correction"],
            registry=self.registry,
        )
        self.last_cycle = Gauge(
            "signal_alert_last_cycle_timestamp_seconds",
            "Evaluation time of the newest successful cycle (unix seconds).",
            registry=self.registry,
        )
        self.areas = Gauge(
            "signal_alert_cycle_areas",
            "Rule x area pairs the newest committed cycle judged.",
            registry=self.registry,
        )

    def cycle(
        self,
        *,
        committed: bool,
        seconds: float,
        evaluated_at: float,
        areas: int,
        transitions: Iterable[tuple[str, str, bool]],
    ) -> None:
        """Count one successful cycle and its (rule, state, correction) transitions."""
        self.cycles.labels("committed" if committed else "already_committed").inc()
        self.cycle_seconds.observe(seconds)
        self.last_cycle.set(evaluated_at)
        if committed:
            self.areas.set(areas)
        for rule, state, correction in transitions:
            self.transitions.labels(rule, state, "true" if correction else "false").inc()

    def failed(self, seconds: float) -> None:
        """Count one cycle that raised."""
        self.cycles.labels("failed").inc()
        self.cycle_seconds.observe(seconds)


def serve_metrics(registry: CollectorRegistry, *, host: str, port: int) -> WSGIServer:
    """Serve `registry` as Prometheus text on http://host:port/metrics from a daemon thread (the
    evaluator serves no API); the caller shuts it down. Port 0 takes a free one."""
    server, _thread = start_http_server(port, addr=host, registry=registry)
    return server


class MetricsMiddleware:
    """Counts requests and latency per route (pure ASGI: cheap on the hot path). Paths that are
    not a route count as `unmatched`, so probing random URLs cannot grow the label set."""

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
