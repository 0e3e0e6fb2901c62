"""Prometheus metrics of the API and the ASGI middleware that counts requests per route."""

from __future__ import annotations

import time
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.types import ASGIApp, Receive, Scope, Send


class _Sized(Protocol):
    @property
    def nbytes(self) -> int: ...

    def __len__(self) -> int: ...


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
        # alert delivery (#25; signal_api.alerts.delivery): exposed as ..._total
        self.alert_notifications = Counter(
            "signal_alert_notifications",
            "Alert notifications by destination and outcome (sent, duplicate, retry, dead).",
            ["destination", "outcome"],
            registry=self.registry,
        )
        self.alert_dead_letters = Counter(
            "signal_alert_dead_letters",
            "Alert notifications dead-lettered after their retries.",
            ["destination"],
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
