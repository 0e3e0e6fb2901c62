"""The alert evaluator's health, as its container's health check asks it: the age of the last
successful cycle on the evaluator's own /metrics (SIGNAL_ALERTS_METRICS_PORT)."""

from __future__ import annotations

import time
import urllib.error
import urllib.request

from signal_api.alerts.delivery_settings import get_delivery_settings

LAST_CYCLE_METRIC = "signal_alert_last_cycle_timestamp_seconds"


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
