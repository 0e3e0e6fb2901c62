"""Build the alert evaluator from settings: engine, store, rules, notifier and its /metrics."""

from __future__ import annotations

import datetime as dt
import importlib
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from signal_api.adapters.engine import QueryEngine
from signal_api.alerts.delivery_settings import get_delivery_settings
from signal_api.alerts.evaluator import Evaluator
from signal_api.alerts.model import Transition, TransitionNotifier
from signal_api.alerts.rules import rules_from_settings
from signal_api.alerts.store import AlertStore, LocalAlertStore, S3AlertStore
from signal_api.observability import EvaluatorMetrics, serve_metrics
from signal_api.settings import ApiSettings

LAST_CYCLE_METRIC = "signal_alert_last_cycle_timestamp_seconds"

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

log = logging.getLogger(__name__)


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


def build_notifier(
    settings: ApiSettings, *, metrics: EvaluatorMetrics | None = None
) -> TransitionNotifier:
    """signal_api.alerts.delivery's notifier when that layer is present, else log lines."""
    try:
        delivery = importlib.import_module("signal_api.alerts.delivery")
    except ImportError:
        return LogNotifier()
    factory = getattr(delivery, "build_notifier", None)
    if factory is None:
        return LogNotifier()
    notifier: TransitionNotifier = factory(settings, metrics=metrics)
    return notifier


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


class EvaluatorUnhealthyError(Exception):
    """The running evaluator's last successful cycle is too old, or it cannot be asked."""


def evaluator_health(*, max_age_s: float, timeout_s: float = 5.0) -> str:
    """One line on the evaluator of this container, read from its /metrics
    (SIGNAL_ALERTS_METRICS_PORT): healthy while its newest successful cycle is at most
    `max_age_s` old. Raises EvaluatorUnhealthyError otherwise: the process may be up while every
    cycle fails (a denied lake) or hangs, and only the age of the last success says so."""
    from prometheus_client.parser import text_string_to_metric_families

    delivery = get_delivery_settings()
    if delivery.metrics_port is None:
        raise EvaluatorUnhealthyError(
            "SIGNAL_ALERTS_METRICS_PORT is not set: the evaluator serves no /metrics to check"
        )
    host = "127.0.0.1" if delivery.metrics_host in ("0.0.0.0", "") else delivery.metrics_host
    url = f"http://{host}:{delivery.metrics_port}/metrics"
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            text = response.read().decode()
    except (urllib.error.URLError, OSError) as exc:
        raise EvaluatorUnhealthyError(f"the evaluator's {url} does not answer: {exc}") from exc
    found = [
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == LAST_CYCLE_METRIC
    ]
    if not found:
        raise EvaluatorUnhealthyError(f"{url} has no {LAST_CYCLE_METRIC}")
    if found[0] <= 0:
        raise EvaluatorUnhealthyError("no evaluator cycle has succeeded yet")
    age = time.time() - found[0]
    if age > max_age_s:
        raise EvaluatorUnhealthyError(
            f"the last successful evaluator cycle is {age:.0f} s old (more than {max_age_s:g} s)"
        )
    return f"healthy: the last successful evaluator cycle is {age:.0f} s old"
