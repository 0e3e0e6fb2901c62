"""Alert delivery to real receivers on 127.0.0.1: the signed webhook (the local receiver as a
subprocess), retries after 503s, dedup across a restart, dead letters and their counters, and
SNS on moto server read back through a subscribed SQS queue."""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import httpx
import pytest
from prometheus_client import generate_latest

from signal_api.alerts.delivery import (
    Notifier as DeliveryNotifier,
)
from signal_api.alerts.delivery import (
    RetryPolicy,
    SignatureError,
    SnsDestination,
    WebhookDestination,
    dashboard_link,
    read_dead_letters,
    sign,
    verify_signature,
)
from signal_api.alerts.delivery_settings import DeliverySettings
from signal_api.alerts.model import Transition
from signal_api.observability import Metrics
from signal_api.wiring import build_notifier
from signal_local.endpoints import ManagedProcess, free_port

SECRET = "s3cret-for-tests"
SINCE = dt.datetime(2026, 12, 2, 5, 0, tzinfo=dt.UTC)
FIRES = SINCE + dt.timedelta(minutes=15)
RESOLVES = SINCE + dt.timedelta(minutes=50)
FAST = RetryPolicy(attempts=4, base_s=0.01, max_s=0.05, total_s=30)


def transition(state: str, *, area: str = "10115", rule: str = "coverage_hole") -> Transition:
    """A transition of one hole episode (firing at FIRES, resolved at RESOLVES)."""
    return Transition(
        alert_id=f"{rule}:postal_code:{area}",
        rule=rule,
        area_kind="postal_code",
        area=area,
        state=state,
        previous="pending" if state == "firing" else "firing",
        at=FIRES if state == "firing" else RESOLVES,
        since=SINCE,
        measures={"weak_share": 0.31, "events": 240.0, "devices": 12.0},
        summary=f"coverage hole in {area}: 31% of 240 samples weak",
    )


# --- the signature, as a receiver checks it -------------------------------------------------


def test_verify_signature_accepts_the_notifiers_signature() -> None:
    body = b'{"key":"a|firing|x"}'
    signature = sign(SECRET, 1_764_651_600, body)
    assert signature.startswith("sha256=")
    assert len(signature) == 7 + 64
    verify_signature(SECRET, "1764651600", body, signature, now=1_764_651_660, tolerance_s=300)


@pytest.mark.parametrize(
    ("secret", "timestamp", "body", "now", "why"),
    [
        ("other-secret", "1764651600", b"{}", 1_764_651_600, "does not match"),
        (SECRET, "1764651600", b'{"x":1}', 1_764_651_600, "does not match"),  # body changed
        (SECRET, "1764651601", b"{}", 1_764_651_601, "does not match"),  # timestamp changed
        (SECRET, "1764651600", b"{}", 1_764_651_600 + 301, "tolerance"),  # replayed late
        (SECRET, "1764651600", b"{}", 1_764_651_600 - 301, "tolerance"),  # from the future
        (SECRET, "yesterday", b"{}", 1_764_651_600, "unix seconds"),
    ],
)
def test_verify_signature_rejects(
    secret: str, timestamp: str, body: bytes, now: float, why: str
) -> None:
    signature = sign(SECRET, 1_764_651_600, b"{}")
    with pytest.raises(SignatureError, match=why):
        verify_signature(secret, timestamp, body, signature, now=now, tolerance_s=300)


def test_dashboard_link_is_the_coverage_view_of_the_area_over_the_episode() -> None:
    firing = urlsplit(dashboard_link("http://dash.example:8501/", transition("firing")))
    assert (firing.netloc, firing.path) == ("dash.example:8501", "/coverage")
    assert parse_qs(firing.query) == {"pc": ["10115"], "range": ["1h"]}  # 15 min + margin
    resolved = urlsplit(dashboard_link("http://dash.example:8501", transition("resolved")))
    assert parse_qs(resolved.query) == {
        "pc": ["10115"],
        "range": ["custom"],
        "from": ["2026-12-02T04:45:00Z"],
        "to": ["2026-12-02T06:05:00Z"],
    }


def test_settings_refuse_a_webhook_without_a_secret() -> None:
    with pytest.raises(ValueError, match="WEBHOOK_SECRET"):
        DeliverySettings(webhook_url="http://127.0.0.1:1/hook")


# --- the local receiver, a real HTTP server in its own process ------------------------------


def _wait_for_port(proc: ManagedProcess, port: int) -> None:
    deadline = time.monotonic() + 60  # a hang guard, not a timing assertion
    while time.monotonic() < deadline:
        if proc.process.poll() is not None:
            raise RuntimeError(f"receiver exited: {proc.log_path.read_text()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    proc.stop()
    raise RuntimeError("receiver did not start")


@pytest.fixture
def start_receiver(tmp_path: Path) -> Iterator[Callable[..., tuple[str, Path]]]:
    """Start `python -m signal_api.alerts.receiver` on a free port: (url, its JSON-lines log)."""
    started: list[ManagedProcess] = []

    def start(*, fail_first: int = 0, fail_status: int = 503) -> tuple[str, Path]:
        port = free_port()
        log = tmp_path / f"receiver-{port}.jsonl"
        out = tmp_path / f"receiver-{port}.out"
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
        args = [sys.executable, "-m", "signal_api.alerts.receiver", "--port", str(port)]
        args += ["--secret", SECRET, "--log", str(log), "--fail-first", str(fail_first)]
        args += ["--fail-status", str(fail_status)]
        with out.open("wb") as handle:
            process = subprocess.Popen(
                args, env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
            )
        proc = ManagedProcess("receiver", f"http://127.0.0.1:{port}", process, out)
        started.append(proc)
        _wait_for_port(proc, port)
        return f"{proc.url}/hook", log

    yield start
    for proc in started:
        proc.stop()


def log_lines(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def webhook_notifier(url: str, state_dir: Path, metrics: Metrics) -> DeliveryNotifier:
    http = httpx.Client(timeout=5)
    return DeliveryNotifier(
        [WebhookDestination(http, url, SECRET)], state_dir=state_dir, retry=FAST, metrics=metrics
    )


def counter(metrics: Metrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def test_webhook_is_signed_verified_and_refuses_replays(
    start_receiver: Callable[..., tuple[str, Path]], tmp_path: Path
) -> None:
    url, log = start_receiver()
    report = webhook_notifier(url, tmp_path / "state", Metrics()).deliver([transition("firing")])
    assert report.sent == [("webhook", transition("firing").key)]
    assert not report.dead_letters
    (line,) = log_lines(log)
    assert line["status"] == 204
    assert line["verified"] is True
    assert line["key"] == "coverage_hole:postal_code:10115|firing|2026-12-02T05:00:00+00:00"
    assert line["body"] == {
        "key": line["key"],
        "alert_id": "coverage_hole:postal_code:10115",
        "rule": "coverage_hole",
        "area_kind": "postal_code",
        "area": "10115",
        "state": "firing",
        "previous": "pending",
        "at": "2026-12-02T05:15:00Z",
        "since": "2026-12-02T05:00:00Z",
        "measures": {"weak_share": 0.31, "events": 240.0, "devices": 12.0},
        "summary": "coverage hole in 10115: 31% of 240 samples weak",
        "correction": False,
    }
    # an attacker who captured that request replays it byte for byte: refused
    body = json.dumps(line["body"], sort_keys=True, separators=(",", ":")).encode()
    headers = {
        "Content-Type": "application/json",
        "X-Signal-Timestamp": line["timestamp"],
        "X-Signal-Signature": sign(SECRET, int(line["timestamp"]), body),
    }
    replay = httpx.post(url, content=body, headers=headers)
    assert replay.status_code == 409, replay.text
    # signed properly, but 10 minutes old (outside the receiver's 300 s): refused
    old = int(time.time()) - 600
    stale = httpx.post(
        url,
        content=body,
        headers={
            **headers,
            "X-Signal-Timestamp": str(old),
            "X-Signal-Signature": sign(SECRET, old, body),
        },
    )
    assert stale.status_code == 401
    assert "tolerance" in stale.json()["reason"]
    # a forged body under a captured signature: refused
    forged = httpx.post(url, content=body.replace(b"10115", b"10117"), headers=headers)
    assert forged.status_code == 401
    assert "does not match" in forged.json()["reason"]
    assert [x["status"] for x in log_lines(log)] == [204, 409, 401, 401]


def test_webhook_retries_through_503s_and_is_not_resent_after_a_restart(
    start_receiver: Callable[..., tuple[str, Path]], tmp_path: Path
) -> None:
    url, log = start_receiver(fail_first=2, fail_status=503)
    state = tmp_path / "state"
    metrics = Metrics()
    firing, resolved = transition("firing"), transition("resolved")
    report = webhook_notifier(url, state, metrics).deliver([firing])
    assert report.sent == [("webhook", firing.key)]
    assert report.retries == 2
    assert [x["status"] for x in log_lines(log)] == [503, 503, 204]
    assert (
        counter(metrics, "signal_alert_notifications_total", destination="webhook", outcome="retry")
        == 2
    )
    # a new notifier on the same state dir (the evaluator restarted) is handed the horizon's
    # transitions again: the firing one is not resent, the resolved one is new
    again = webhook_notifier(url, state, Metrics()).deliver([firing, resolved])
    assert again.duplicates == [("webhook", firing.key)]
    assert again.sent == [("webhook", resolved.key)]
    verified = [x["body"]["state"] for x in log_lines(log) if x["verified"]]
    assert verified == ["firing", "resolved"]
    # and once more after another restart: nothing at all reaches the receiver
    webhook_notifier(url, state, Metrics()).deliver([resolved, firing])
    assert len(log_lines(log)) == 4


def test_a_receiver_that_always_fails_gets_one_dead_letter(
    start_receiver: Callable[..., tuple[str, Path]], tmp_path: Path
) -> None:
    url, log = start_receiver(fail_first=1_000, fail_status=500)
    state = tmp_path / "state"
    metrics = Metrics()
    firing = transition("firing", area="47014", rule="out_of_service")
    report = webhook_notifier(url, state, metrics).deliver([firing])
    assert report.sent == []
    assert report.dead_letters == [("webhook", firing.key)]
    assert len(log_lines(log)) == FAST.attempts  # every attempt reached it, then we gave up
    (dead,) = read_dead_letters(state)
    assert dead["destination"] == "webhook"
    assert dead["key"] == firing.key
    assert "answered 500" in dead["reason"]
    assert dead["payload"]["alert_id"] == "out_of_service:postal_code:47014"
    # the evaluator hands it again next cycle: no second dead letter, no more requests
    webhook_notifier(url, state, metrics).deliver([firing])
    assert len(read_dead_letters(state)) == 1
    assert len(log_lines(log)) == FAST.attempts
    exposed = generate_latest(metrics.registry).decode()
    assert 'signal_alert_dead_letters_total{destination="webhook"} 1.0' in exposed
    assert 'signal_alert_notifications_total{destination="webhook",outcome="dead"} 1.0' in exposed
    assert (
        'signal_alert_notifications_total{destination="webhook",outcome="duplicate"} 1.0' in exposed
    )


def test_a_4xx_is_not_retried(
    start_receiver: Callable[..., tuple[str, Path]], tmp_path: Path
) -> None:
    url, log = start_receiver(fail_first=1_000, fail_status=400)
    report = webhook_notifier(url, tmp_path / "state", Metrics()).deliver([transition("firing")])
    assert report.retries == 0
    assert len(report.dead_letters) == 1
    assert len(log_lines(log)) == 1


def test_429_and_refused_connections_are_retried(
    start_receiver: Callable[..., tuple[str, Path]], tmp_path: Path
) -> None:
    url, _log = start_receiver(fail_first=1, fail_status=429)
    report = webhook_notifier(url, tmp_path / "a", Metrics()).deliver([transition("firing")])
    assert report.retries == 1
    assert report.sent
    closed = f"http://127.0.0.1:{free_port()}/hook"  # nothing listens there
    refused = webhook_notifier(closed, tmp_path / "b", Metrics()).deliver([transition("firing")])
    assert refused.retries == FAST.attempts - 1
    assert len(refused.dead_letters) == 1
    (dead,) = read_dead_letters(tmp_path / "b")
    assert "ConnectError" in dead["reason"]


# --- SNS on moto server, read back through a subscribed SQS queue ----------------------------


def test_sns_publishes_the_transition_with_attributes(
    moto_endpoint_url: str, tmp_path: Path
) -> None:
    sns = boto3.client("sns", region_name="us-east-1", endpoint_url=moto_endpoint_url)
    sqs = boto3.client("sqs", region_name="us-east-1", endpoint_url=moto_endpoint_url)
    topic = sns.create_topic(Name="signal-alerts-test")["TopicArn"]
    queue_url = sqs.create_queue(QueueName="signal-alerts-test")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    notifier = DeliveryNotifier(
        [SnsDestination(sns, topic)], state_dir=tmp_path / "state", retry=FAST, metrics=Metrics()
    )
    firing, resolved = transition("firing"), transition("resolved")
    assert len(notifier.deliver([resolved, firing]).sent) == 2  # sorted: firing goes first
    assert notifier.deliver([firing, resolved]).sent == []  # deduplicated
    received: list[dict[str, Any]] = []
    deadline = time.monotonic() + 30  # a hang guard
    while len(received) < 2 and time.monotonic() < deadline:
        answer = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        received += [json.loads(m["Body"]) for m in answer.get("Messages", [])]
    assert len(received) == 2
    envelopes = sorted(received, key=lambda e: json.loads(e["Message"])["at"])
    messages = [json.loads(e["Message"]) for e in envelopes]
    assert [m["state"] for m in messages] == ["firing", "resolved"]
    assert [m["key"] for m in messages] == [firing.key, resolved.key]
    assert messages[0]["measures"] == {"weak_share": 0.31, "events": 240.0, "devices": 12.0}
    attributes = envelopes[1]["MessageAttributes"]
    assert attributes["state"] == {"Type": "String", "Value": "resolved"}
    assert attributes["alert_id"]["Value"] == "coverage_hole:postal_code:10115"
    assert envelopes[0]["Subject"] == "[firing] coverage_hole 10115"


def test_sns_to_a_missing_topic_is_a_dead_letter_without_retries(
    moto_endpoint_url: str, tmp_path: Path
) -> None:
    sns = boto3.client("sns", region_name="us-east-1", endpoint_url=moto_endpoint_url)
    missing = "arn:aws:sns:us-east-1:123456789012:no-such-topic"
    notifier = DeliveryNotifier(
        [SnsDestination(sns, missing)], state_dir=tmp_path / "state", retry=FAST, metrics=Metrics()
    )
    report = notifier.deliver([transition("firing")])
    assert report.retries == 0
    assert report.dead_letters == [("sns", transition("firing").key)]
    (dead,) = read_dead_letters(tmp_path / "state")
    assert "NotFound" in dead["reason"]


def test_the_settings_build_the_webhook_and_sns_destinations(
    start_receiver: Callable[..., tuple[str, Path]], moto_endpoint_url: str, tmp_path: Path
) -> None:
    url, log = start_receiver()
    sns = boto3.client("sns", region_name="us-east-1", endpoint_url=moto_endpoint_url)
    topic = sns.create_topic(Name="signal-alerts-settings")["TopicArn"]
    settings = DeliverySettings(
        webhook_url=url,
        webhook_secret=SECRET,
        sns_topic_arn=topic,
        sns_endpoint_url=moto_endpoint_url,
        state_dir=tmp_path / "state",
    )
    notifier = build_notifier(None, settings=settings, metrics=Metrics())
    assert [d.name for d in notifier.destinations] == ["webhook", "sns"]
    report = notifier.deliver([transition("firing")])
    assert report.sent == [("webhook", transition("firing").key), ("sns", transition("firing").key)]
    assert [x["verified"] for x in log_lines(log)] == [True]
    sent = json.loads((tmp_path / "state" / "sent.json").read_text())
    assert set(sent) == {"webhook", "sns"}
    assert list(sent["sns"]) == [transition("firing").key]


def test_without_destinations_nothing_is_sent_or_stored(tmp_path: Path) -> None:
    notifier = build_notifier(None, settings=DeliverySettings(state_dir=tmp_path / "state"))
    assert notifier.destinations == []
    assert notifier.deliver([transition("firing")]).sent == []
    assert not (tmp_path / "state").exists()


def test_state_on_s3_survives_a_restart_and_keeps_dead_letters(
    start_receiver: Callable[..., tuple[str, Path]], moto_endpoint_url: str, bucket: str
) -> None:
    url, log = start_receiver()
    settings = DeliverySettings(
        webhook_url=url,
        webhook_secret=SECRET,
        sns_topic_arn="arn:aws:sns:us-east-1:123456789012:no-such-topic",
        sns_endpoint_url=moto_endpoint_url,
        s3_endpoint_url=moto_endpoint_url,
        state_s3_uri=f"s3://{bucket}/alerts/delivery",
        retry_base_s=0.01,
    )
    firing = transition("firing")
    first = build_notifier(None, settings=settings, metrics=Metrics()).deliver([firing])
    assert first.sent == [("webhook", firing.key)]
    assert first.dead_letters == [("sns", firing.key)]
    # a new task (no local disk kept) reads the same state from S3: nothing is resent
    again = build_notifier(None, settings=settings, metrics=Metrics())
    report = again.deliver([firing])
    assert report.sent == []
    assert report.dead_letters == []
    assert sorted(report.duplicates) == [("sns", firing.key), ("webhook", firing.key)]
    assert len(log_lines(log)) == 1
    (dead,) = again.state.dead_letters()
    assert dead["destination"] == "sns"
    assert "NotFound" in dead["reason"]
    keys = boto3.client("s3", endpoint_url=moto_endpoint_url).list_objects_v2(
        Bucket=bucket, Prefix="alerts/delivery/"
    )["Contents"]
    assert {k["Key"].rsplit("/", 2)[-2] for k in keys} == {"delivery", "dead-letters"}
