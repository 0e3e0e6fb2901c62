"""A real Alertmanager (Debian's prometheus-alertmanager, 0.25) on a loopback port: the notifier
posts firing then resolved, and the test reads the alert back from its /api/v2/alerts and from
the notifications Alertmanager itself sends to a webhook receiver (send_resolved).

Alertmanager's GET /api/v2/alerts never lists an alert whose endsAt has passed, whatever the
active/silenced/inhibited/unprocessed flags (api/v2/api.go, alertFilter: "if !a.EndsAt.IsZero()
&& a.EndsAt.Before(now) { return false }"), so "resolved" is read back as: gone from that list,
and Alertmanager's own resolved notification with our labels and endsAt."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from signal_api.alerts.delivery import AlertmanagerDestination, Notifier, RetryPolicy
from signal_api.alerts.model import Transition
from signal_api.observability import Metrics
from signal_local.endpoints import ManagedProcess, free_port

ALERTMANAGER = shutil.which("prometheus-alertmanager")
TTL = dt.timedelta(hours=24)
DASHBOARD = "http://127.0.0.1:8501"
HANG_GUARD_S = 60  # waits end as soon as the condition holds: not a timing assertion


class Notifications:
    """A webhook receiver in a thread, collecting what Alertmanager sends it."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                received.append(json.loads(body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/alertmanager"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def alerts(self, status: str) -> list[dict[str, Any]]:
        return [a for n in self.received for a in n["alerts"] if a["status"] == status]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def notifications() -> Iterator[Notifications]:
    receiver = Notifications()
    yield receiver
    receiver.close()


@pytest.fixture
def alertmanager(tmp_path: Path, notifications: Notifications) -> Iterator[str]:
    """Alertmanager on a free loopback port, clustering off, routing to `notifications`."""
    config = tmp_path / "alertmanager.yml"
    config.write_text(
        "route:\n"
        "  receiver: signal\n"
        "  group_by: [alert_id]\n"
        "  group_wait: 1s\n"
        "  group_interval: 1s\n"
        "  repeat_interval: 1h\n"
        "receivers:\n"
        "  - name: signal\n"
        "    webhook_configs:\n"
        f"      - url: {notifications.url}\n"
        "        send_resolved: true\n"
    )
    if ALERTMANAGER is None:
        pytest.fail(
            "prometheus-alertmanager is missing: apt-get install -y prometheus-alertmanager "
            "(.ci/run installs it)"
        )
    port = free_port()
    log = tmp_path / "alertmanager.log"
    with log.open("wb") as handle:
        process = subprocess.Popen(
            [
                ALERTMANAGER,
                f"--config.file={config}",
                f"--storage.path={tmp_path / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--cluster.listen-address=",  # empty: no gossip, no other port
            ],
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    proc = ManagedProcess("alertmanager", f"http://127.0.0.1:{port}", process, log)
    try:
        wait_until(lambda: _ready(proc), "alertmanager to start")
        yield proc.url
    finally:
        proc.stop()


def _ready(proc: ManagedProcess) -> bool:
    if proc.process.poll() is not None:
        raise RuntimeError(f"alertmanager exited: {proc.log_path.read_text()}")
    try:
        return httpx.get(proc.url + "/-/ready", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def wait_until(condition: Any, what: str) -> None:
    deadline = time.monotonic() + HANG_GUARD_S
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.1)


def listed(url: str, alert_id: str) -> list[dict[str, Any]]:
    """Every alert Alertmanager lists with that alert_id, whatever its status."""
    params = {
        "active": "true",
        "silenced": "true",
        "inhibited": "true",
        "unprocessed": "true",
        "filter": f'alert_id="{alert_id}"',
    }
    response = httpx.get(url + "/api/v2/alerts", params=params)
    response.raise_for_status()
    alerts: list[dict[str, Any]] = response.json()
    return alerts


def parse(moment: str) -> dt.datetime:
    return dt.datetime.fromisoformat(moment.replace("Z", "+00:00"))


def transition(state: str, *, since: dt.datetime, at: dt.datetime, rule: str) -> Transition:
    return Transition(
        alert_id=f"{rule}:postal_code:47014",
        rule=rule,
        area_kind="postal_code",
        area="47014",
        state=state,
        previous="pending" if state == "firing" else "firing",
        at=at,
        since=since,
        measures={"out_of_service_share": 0.42, "events": 130.0},
        summary="47014: 42% of 130 events out of service",
    )


def notifier(
    url: str,
    state_dir: Path,
    metrics: Metrics,
    *,
    clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
) -> Notifier:
    destination = AlertmanagerDestination(
        httpx.Client(timeout=5), url, dashboard_url=DASHBOARD, firing_ttl=TTL
    )
    return Notifier(
        [destination],
        state_dir=state_dir,
        retry=RetryPolicy(attempts=3, base_s=0.01, max_s=0.05),
        metrics=metrics,
        clock=clock,
    )


def test_alertmanager_shows_the_alert_firing_then_resolved(
    alertmanager: str, notifications: Notifications, tmp_path: Path
) -> None:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    since, fired_at = now - dt.timedelta(minutes=10), now - dt.timedelta(seconds=5)
    firing = transition("firing", since=since, at=fired_at, rule="out_of_service")
    metrics = Metrics()
    assert notifier(alertmanager, tmp_path / "state", metrics).deliver([firing]).sent

    (alert,) = listed(alertmanager, firing.alert_id)
    assert alert["status"]["state"] == "active"
    assert alert["labels"] == {
        "alertname": "out_of_service",
        "area_kind": "postal_code",
        "area": "47014",
        "alert_id": "out_of_service:postal_code:47014",
        "severity": "critical",
    }
    assert alert["annotations"]["summary"] == "47014: 42% of 130 events out of service"
    assert json.loads(alert["annotations"]["measures"]) == {
        "events": 130.0,
        "out_of_service_share": 0.42,
    }
    assert parse(alert["startsAt"]) == since
    assert parse(alert["endsAt"]) == fired_at + TTL  # still active, not the 5 min timeout
    link = urlsplit(alert["generatorURL"])
    assert link.path == "/coverage"
    assert parse_qs(link.query)["pc"] == ["47014"]
    wait_until(lambda: notifications.alerts("firing"), "Alertmanager's firing notification")

    # resolved, posted by a restarted notifier (same state dir) that is also handed the
    # firing transition again: that one is not re-posted
    resolved_at = dt.datetime.now(dt.UTC).replace(microsecond=0)
    resolved = transition("resolved", since=since, at=resolved_at, rule="out_of_service")
    report = notifier(alertmanager, tmp_path / "state", metrics).deliver([firing, resolved])
    assert report.duplicates == [("alertmanager", firing.key)]
    assert report.sent == [("alertmanager", resolved.key)]
    wait_until(lambda: notifications.alerts("resolved"), "Alertmanager's resolved notification")
    assert listed(alertmanager, firing.alert_id) == []  # endsAt passed: no longer listed
    (done,) = notifications.alerts("resolved")
    assert done["labels"]["alert_id"] == "out_of_service:postal_code:47014"
    assert parse(done["startsAt"]) == since
    assert parse(done["endsAt"]) == resolved_at
    assert len(notifications.alerts("firing")) == 1  # told once, though handed twice
    assert (
        metrics.registry.get_sample_value(
            "signal_alert_notifications_total",
            {"destination": "alertmanager", "outcome": "sent"},
        )
        == 2
    )


def test_alertmanager_rejecting_an_alert_is_a_dead_letter_not_a_retry(
    alertmanager: str, tmp_path: Path
) -> None:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    # resolved before it started: Alertmanager validates the alert and answers 400
    broken = transition(
        "resolved", since=now, at=now - dt.timedelta(minutes=1), rule="coverage_hole"
    )
    report = notifier(alertmanager, tmp_path / "state", Metrics()).deliver([broken])
    assert report.retries == 0
    assert report.dead_letters == [("alertmanager", broken.key)]
    dead = json.loads((tmp_path / "state" / "dead-letters.jsonl").read_text())
    assert "answered 400" in dead["reason"]
    assert "start time must be before end time" in dead["reason"]


def test_a_long_firing_alert_is_renewed_before_alertmanager_ends_it(
    alertmanager: str, notifications: Notifications, tmp_path: Path
) -> None:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    since, fired_at = now - dt.timedelta(minutes=10), now - dt.timedelta(seconds=5)
    firing = transition("firing", since=since, at=fired_at, rule="coverage_hole")
    metrics = Metrics()
    assert notifier(alertmanager, tmp_path / "state", metrics).deliver([firing]).sent
    (alert,) = listed(alertmanager, firing.alert_id)
    assert parse(alert["endsAt"]) == fired_at + TTL
    wait_until(lambda: notifications.alerts("firing"), "Alertmanager's firing notification")

    # a restarted notifier, 11 h later: the lease has more than half left, nothing is sent
    later = now + dt.timedelta(hours=11)
    early = notifier(alertmanager, tmp_path / "state", metrics, clock=lambda: later)
    assert early.refresh().refreshed == []
    # 13 h later: more than half of the 24 h lease is gone, so it is renewed from then
    renew_at = now + dt.timedelta(hours=13)
    renewing = notifier(alertmanager, tmp_path / "state", metrics, clock=lambda: renew_at)
    assert renewing.deliver([firing]).refreshed == [("alertmanager", firing.alert_id)]
    (alert,) = listed(alertmanager, firing.alert_id)
    assert alert["status"]["state"] == "active"
    assert parse(alert["startsAt"]) == since  # the same alert, its episode unchanged
    assert parse(alert["endsAt"]) == renew_at + TTL
    assert (
        metrics.registry.get_sample_value(
            "signal_alert_notifications_total",
            {"destination": "alertmanager", "outcome": "refresh"},
        )
        == 1
    )

    # resolved: the lease ends with it; no later refresh brings the alert back
    resolved_at = dt.datetime.now(dt.UTC).replace(microsecond=0)
    resolved = transition("resolved", since=since, at=resolved_at, rule="coverage_hole")
    assert notifier(alertmanager, tmp_path / "state", metrics).deliver([resolved]).sent
    much_later = now + dt.timedelta(hours=20)
    after = notifier(alertmanager, tmp_path / "state", metrics, clock=lambda: much_later)
    assert after.refresh().refreshed == []
    assert listed(alertmanager, firing.alert_id) == []
    wait_until(lambda: notifications.alerts("resolved"), "Alertmanager's resolved notification")
    assert len(notifications.alerts("firing")) == 1  # the renewal did not notify again
