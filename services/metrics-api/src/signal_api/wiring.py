"""The one place the Metrics API's collaborators are built from settings: the query engine, the
app's context (result cache, rate limiters, keys, readiness), and the alert evaluator's store,
notifier (its destinations and state) and /metrics. `main.py` and `app.py` parse and call."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from signal_api.adapters.engine import QueryEngine
from signal_api.alerts.delivery_settings import DeliverySettings, get_delivery_settings
from signal_api.alerts.evaluator import Evaluator
from signal_api.alerts.model import Transition, TransitionNotifier
from signal_api.alerts.rules import rules_from_settings
from signal_api.alerts.store import AlertStore, LocalAlertStore, S3AlertStore
from signal_api.context import ApiContext
from signal_api.core.auth import KeyRing
from signal_api.core.cache import ResultCache
from signal_api.core.meta import Recent
from signal_api.core.ratelimit import ConcurrencyLimit, RateLimiter
from signal_api.core.readiness import Readiness
from signal_api.observability import AlertDeliveryMetrics, EvaluatorMetrics, Metrics, serve_metrics
from signal_api.settings import ApiSettings
from signal_common.quality import bands_with_overrides

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

    import httpx

    from signal_api.alerts.delivery import DeliveryState, Destination

log = logging.getLogger(__name__)


def build_engine(settings: ApiSettings) -> QueryEngine:
    """The query engine the settings select."""
    if settings.engine == "athena":
        from signal_api.adapters.athena_engine import AthenaEngine

        return AthenaEngine(
            database=settings.glue_database,
            workgroup=settings.athena_workgroup,
            region=settings.aws_region,
            output_location=settings.athena_output_location,
            endpoint_url=settings.athena_endpoint_url,
            poll_interval_s=settings.athena_poll_interval_s,
            timeout_s=settings.query_timeout_s,
        )
    from signal_api.adapters.duckdb_engine import DuckDBEngine

    return DuckDBEngine(
        settings.lake_root, threads=settings.duckdb_threads, timeout_s=settings.query_timeout_s
    )


def build_context(
    settings: ApiSettings,
    engine: QueryEngine,
    *,
    clock: Callable[[], dt.datetime],
    monotonic: Callable[[], float],
) -> ApiContext:
    """The context of one app from its settings (the caller owns and closes the engine)."""
    cache = ResultCache(
        ttl_s=settings.cache_ttl_s,
        max_entries=settings.cache_max_entries,
        max_bytes=settings.cache_max_bytes,
        stale_max_age_s=settings.stale_max_age_s,
        size_of=lambda value: value.nbytes,
        clock=monotonic,
    )
    metrics = Metrics()
    metrics.watch_cache(cache)
    return ApiContext(
        settings=settings,
        engine=engine,
        metrics=metrics,
        cache=cache,
        limiter=RateLimiter(
            per_minute=settings.rate_limit_per_minute,
            burst=settings.rate_limit_burst,
            clock=monotonic,
        ),
        auth_failures=RateLimiter(
            per_minute=settings.auth_failures_per_minute,
            burst=settings.auth_failure_burst,
            clock=monotonic,
        ),
        concurrency=ConcurrencyLimit(per_key=settings.max_concurrent_per_key),
        keys=KeyRing.parse(settings.api_keys_sha256),
        readiness=Readiness(
            ttl_s=settings.ready_cache_s,
            failure_threshold=settings.ready_failure_threshold,
            clock=monotonic,
        ),
        clock=clock,
        bands=bands_with_overrides(settings.quality_band_overrides),
        # the state is read at most once per result-cache TTL: an uncached answer costs one
        # small query of pipeline_batches more only when no other did so that recently
        recent_lake_state=Recent(ttl_s=settings.cache_ttl_s, clock=monotonic),
    )


class LogNotifier:
    """Delivery when no delivery layer is configured: one log line per transition key."""

    def __init__(self) -> None:
        self._sent: set[str] = set()

    def deliver(self, transitions: Sequence[Transition]) -> int:
        fresh = [t for t in transitions if t.key not in self._sent]
        for t in fresh:
            log.warning("alert %s", t.state, extra={"key": t.key, "summary": t.summary})
            self._sent.add(t.key)
        return len(fresh)


def build_store(settings: ApiSettings) -> AlertStore:
    """alert_events under the lake root (S3 in AWS, a directory locally)."""
    if settings.lake_root.startswith("s3://"):
        import boto3

        client: Any = boto3.client(
            "s3", region_name=settings.aws_region, endpoint_url=settings.s3_endpoint_url
        )
        return S3AlertStore(client, settings.lake_root)
    return LocalAlertStore(settings.lake_root)


def delivery_destinations(
    settings: DeliverySettings, *, http: httpx.Client | None = None, sns_client: Any = None
) -> list[Destination]:
    """The destinations the settings turn on (Alertmanager, webhook, SNS), in that order."""
    from signal_api.alerts import delivery

    if http is None and (settings.alertmanager_url or settings.webhook_url):
        import httpx

        http = httpx.Client(timeout=settings.http_timeout_s)
    destinations: list[Destination] = []
    if settings.alertmanager_url:
        assert http is not None
        destinations.append(
            delivery.AlertmanagerDestination(
                http,
                settings.alertmanager_url,
                dashboard_url=settings.dashboard_url,
                firing_ttl=dt.timedelta(seconds=settings.alertmanager_firing_ttl_s),
                severities=settings.severities,
            )
        )
    if settings.webhook_url:
        assert http is not None
        assert settings.webhook_secret is not None
        destinations.append(
            delivery.WebhookDestination(
                http, settings.webhook_url, settings.webhook_secret.get_secret_value()
            )
        )
    if settings.sns_topic_arn:
        if sns_client is None:
            import boto3
            from botocore.config import Config

            # one attempt per call: RetryPolicy governs retries and their total time
            sns_client = boto3.client(
                "sns",
                region_name=settings.aws_region,
                endpoint_url=settings.sns_endpoint_url,
                config=Config(retries={"max_attempts": 1, "mode": "standard"}),
            )
        destinations.append(delivery.SnsDestination(sns_client, settings.sns_topic_arn))
    return destinations


def delivery_state(settings: DeliverySettings) -> DeliveryState:
    """The S3 prefix when one is set (AWS: the task's disk is not kept), else the directory."""
    from signal_api.alerts import delivery

    if not settings.state_s3_uri:
        return delivery.LocalDeliveryState(settings.state_dir)
    import boto3

    client = boto3.client(
        "s3", region_name=settings.aws_region, endpoint_url=settings.s3_endpoint_url
    )
    return delivery.S3DeliveryState(client, settings.state_s3_uri)


def build_notifier(
    _api_settings: ApiSettings | None = None,
    *,
    settings: DeliverySettings | None = None,
    metrics: AlertDeliveryMetrics | None = None,
) -> TransitionNotifier:
    """The notifier the SIGNAL_ALERTS_ settings describe (`settings`, else the environment; the
    API's settings are not needed), or log lines when signal_api.alerts.delivery cannot be
    imported (httpx, which it needs, is only a test extra of the package)."""
    try:
        from signal_api.alerts import delivery
    except ImportError:
        return LogNotifier()
    settings = settings if settings is not None else DeliverySettings()
    return delivery.Notifier(
        delivery_destinations(settings),
        state=delivery_state(settings),
        retry=delivery.RetryPolicy(
            attempts=settings.retry_attempts,
            base_s=settings.retry_base_s,
            max_s=settings.retry_max_s,
            total_s=settings.retry_total_s,
        ),
        metrics=metrics,
        retention=dt.timedelta(days=settings.sent_retention_days),
    )


def serve_evaluator_metrics() -> tuple[EvaluatorMetrics, WSGIServer] | None:
    """The evaluator's metrics and their /metrics server on SIGNAL_ALERTS_METRICS_HOST:PORT;
    None when no port is set (nothing would read them). It is the evaluator's only socket."""
    delivery = get_delivery_settings()
    if delivery.metrics_port is None:
        return None
    metrics = EvaluatorMetrics()
    server = serve_metrics(metrics.registry, host=delivery.metrics_host, port=delivery.metrics_port)
    log.info(
        "alert evaluator metrics served",
        extra={"url": f"http://{delivery.metrics_host}:{server.server_port}/metrics"},
    )
    return metrics, server


def _notifier(settings: ApiSettings, metrics: EvaluatorMetrics | None) -> TransitionNotifier:
    # without metrics, the one-argument call: a build_notifier(settings) stand-in keeps working
    if metrics is None:
        return build_notifier(settings)
    return build_notifier(settings, metrics=metrics)


def build_evaluator(
    settings: ApiSettings,
    engine: QueryEngine,
    *,
    store: AlertStore | None = None,
    notifier: TransitionNotifier | None = None,
    metrics: EvaluatorMetrics | None = None,
) -> Evaluator:
    """The evaluator the settings describe (store and notifier may be given, e.g. by tests);
    with `metrics`, it and the notifier it builds count into them."""
    return Evaluator(
        engine,
        store if store is not None else build_store(settings),
        rules_from_settings(settings),
        notifier if notifier is not None else _notifier(settings, metrics),
        lookback=dt.timedelta(days=settings.alert_state_lookback_days),
        metrics=metrics,
    )
