"""Alert delivery: each firing/resolved transition to Alertmanager, a signed webhook and SNS,
once per destination, with bounded jittered retries, persistent dedup and dead letters.

Deduplication is by `Transition.key` per destination, in a JSON file of the state dir that is
rewritten atomically (temp file + rename) after every successful send, so a restarted notifier
(or the evaluator handing the same horizon's transitions again) never resends. The one window
left is a crash between a receiver's 2xx and that rename: delivery is at least once, and every
webhook request carries the key (X-Signal-Key) for a receiver that must be exactly once.
A notification that still fails after its retries (or gets a 4xx other than 429) is appended
to dead-letters.jsonl with the reason and its payload, and is not retried by later calls.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import os
import random
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlencode

import httpx

from signal_api.alerts.delivery_settings import DEFAULT_SEVERITIES
from signal_api.alerts.model import Transition
from signal_api.observability import AlertDeliveryMetrics
from signal_common.aws import backoff_s, error_code

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Signal-Signature"
TIMESTAMP_HEADER = "X-Signal-Timestamp"
KEY_HEADER = "X-Signal-Key"
SENT_FILE = "sent.json"
LEASES_FILE = "leases.json"
DEAD_LETTERS_FILE = "dead-letters.jsonl"
_STATE_ORDER = {"firing": 0, "resolved": 1}


class DeliveryError(Exception):
    """One attempt to notify a destination failed; `retryable` says whether to try again."""

    def __init__(self, message: str, *, retryable: bool, retry_after_s: float | None = None):
        super().__init__(message)
        self.retryable = retryable
        self.retry_after_s = retry_after_s


class SignatureError(ValueError):
    """A webhook request whose signature or timestamp a receiver must reject (says why)."""


def _iso(moment: dt.datetime) -> str:
    """RFC 3339 in UTC with a Z, as Alertmanager's API and most receivers expect."""
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def transition_json(t: Transition) -> dict[str, Any]:
    """The transition as the JSON object every destination carries (its fields and key)."""
    fields = asdict(t)
    fields.update(at=_iso(t.at), since=_iso(t.since), measures=dict(t.measures))
    return {"key": t.key, **fields}


def transition_from_json(data: Mapping[str, Any]) -> Transition:
    """The transition `transition_json` wrote."""
    fields = {name: value for name, value in data.items() if name != "key"}
    for name in ("at", "since"):
        fields[name] = dt.datetime.fromisoformat(str(fields[name]).replace("Z", "+00:00"))
    return Transition(**fields)


def dashboard_link(dashboard_url: str, t: Transition) -> str:
    """The dashboard's Coverage map view of the transition's area over its episode.

    The dashboard keeps its filters in the URL (signal_dashboard.core.filters: `pc` postal
    codes, `range`, `from`/`to` in UTC); it has no per-area page, so the link is the Coverage
    page filtered to the area. A firing alert links a live range covering the episode, a
    resolved one the episode itself with 15 minutes either side."""
    query: dict[str, str] = {}
    if t.area_kind == "postal_code":
        query["pc"] = t.area
    else:  # no dashboard filter for other area kinds yet: keep the identity readable
        query.update(area_kind=t.area_kind, area=t.area)
    margin = dt.timedelta(minutes=15)
    if t.state == "resolved":
        query["range"] = "custom"
        query["from"] = (t.since - margin).astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        query["to"] = (t.at + margin).astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    else:
        span = t.at - t.since + margin
        presets = [("1h", 1), ("6h", 6), ("24h", 24)]
        query["range"] = next(
            (name for name, hours in presets if span <= dt.timedelta(hours=hours)), "24h"
        )
    return f"{dashboard_url.rstrip('/')}/coverage?{urlencode(query)}"


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The X-Signal-Signature value: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">."""
    message = str(timestamp).encode() + b"." + body
    return "sha256=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def verify_signature(
    secret: str,
    timestamp: str,
    body: bytes,
    signature: str,
    *,
    now: float,
    tolerance_s: float = 300.0,
) -> None:
    """Check a webhook request as a receiver must; raise SignatureError (with why) if not.

    The signature covers the timestamp, so an old request replayed later fails the tolerance
    check; a replay inside the tolerance is the receiver's to refuse, by remembering the
    signatures (or X-Signal-Key values) it accepted for `tolerance_s`."""
    try:
        sent_at = int(timestamp)
    except (TypeError, ValueError):
        raise SignatureError(f"{TIMESTAMP_HEADER} is not unix seconds: {timestamp!r}") from None
    if abs(now - sent_at) > tolerance_s:
        raise SignatureError(
            f"timestamp {sent_at} is {now - sent_at:+.0f} s from now (tolerance {tolerance_s:g} s)"
        )
    expected = sign(secret, sent_at, body)
    if not hmac.compare_digest(expected.encode(), (signature or "").encode()):
        raise SignatureError("signature does not match the body and timestamp")


class Destination(Protocol):
    """One place notifications go; `send` raises DeliveryError on failure."""

    name: str
    # Alertmanager's: a firing alert is active until its endsAt, so it is re-sent (same
    # labels, a later endsAt) before half of this has passed; None: told once, no lease
    lease: dt.timedelta | None

    def send(self, t: Transition) -> None: ...

    def payload(self, t: Transition) -> Any: ...


def _raise_for_http(response: httpx.Response, destination: str) -> None:
    """2xx passes; 429 and 5xx are retryable; any other 4xx is permanent."""
    if response.is_success:
        return
    status = response.status_code
    retry_after = None
    header = response.headers.get("Retry-After")
    if header is not None:
        try:
            retry_after = float(header)
        except ValueError:
            retry_after = None
    text = response.text[:300]
    raise DeliveryError(
        f"{destination} answered {status}: {text}",
        retryable=status == 429 or status >= 500,
        retry_after_s=retry_after,
    )


def _post(http: httpx.Client, url: str, destination: str, **kwargs: Any) -> None:
    try:
        response = http.post(url, **kwargs)
    except httpx.TransportError as exc:  # connection refused/reset, timeouts
        raise DeliveryError(f"{destination}: {type(exc).__name__}: {exc}", retryable=True) from exc
    _raise_for_http(response, destination)


class AlertmanagerDestination:
    """POSTs Alertmanager's /api/v2/alerts: one alert per transition, identified by labels.

    Alertmanager's client contract (prometheus.io/docs/alerting/clients/): labels identify and
    deduplicate an alert; startsAt is when it fired; "endsAt is only set if the end time of an
    alert is known. Otherwise it will be set to a configurable timeout period from the time
    since the alert was last received" (resolve_timeout, 5 min by default), because Prometheus
    re-sends active alerts every 30 s to 3 min. This notifier sends each transition once, so a
    firing alert carries endsAt = at + firing_ttl (a lease: active until then), renewed by
    `Notifier.refresh` once half of it has passed; the resolved one carries endsAt = at, which
    resolves it at once."""

    name = "alertmanager"
    lease: dt.timedelta | None

    def __init__(
        self,
        http: httpx.Client,
        base_url: str,
        *,
        dashboard_url: str,
        firing_ttl: dt.timedelta,
        severities: Mapping[str, str] | None = None,
    ) -> None:
        self.http = http
        self.url = base_url.rstrip("/") + "/api/v2/alerts"
        self.dashboard_url = dashboard_url
        self.firing_ttl = firing_ttl
        self.lease = firing_ttl
        self.severities = dict(severities or DEFAULT_SEVERITIES)

    def payload(self, t: Transition) -> list[dict[str, Any]]:
        ends = t.at if t.state == "resolved" else t.at + self.firing_ttl
        return [
            {
                "labels": {
                    "alertname": t.rule,
                    "area_kind": t.area_kind,
                    "area": t.area,
                    "alert_id": t.alert_id,
                    "severity": self.severities.get(t.rule, "warning"),
                },
                "annotations": {
                    "summary": t.summary,
                    "measures": json.dumps(dict(t.measures), sort_keys=True),
                    "transition_key": t.key,
                    "correction": "true" if t.correction else "false",
                },
                "startsAt": _iso(t.since),
                "endsAt": _iso(ends),
                "generatorURL": dashboard_link(self.dashboard_url, t),
            }
        ]

    def send(self, t: Transition) -> None:
        _post(self.http, self.url, self.name, json=self.payload(t))


class WebhookDestination:
    """POSTs the transition's JSON, signed: X-Signal-Timestamp and X-Signal-Signature."""

    name = "webhook"
    lease: dt.timedelta | None = None

    def __init__(
        self,
        http: httpx.Client,
        url: str,
        secret: str,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.http = http
        self.url = url
        self.secret = secret
        self.clock = clock

    def payload(self, t: Transition) -> dict[str, Any]:
        return transition_json(t)

    def send(self, t: Transition) -> None:
        body = json.dumps(self.payload(t), sort_keys=True, separators=(",", ":")).encode()
        timestamp = int(self.clock())  # each attempt signs afresh: a retry is never "old"
        headers = {
            "Content-Type": "application/json",
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: sign(self.secret, timestamp, body),
            KEY_HEADER: t.key,
        }
        _post(self.http, self.url, self.name, content=body, headers=headers)


class SnsDestination:
    """Publishes the transition's JSON to an SNS topic, with attributes for subscription
    filter policies (rule, state, area_kind, area, alert_id)."""

    name = "sns"
    lease: dt.timedelta | None = None

    def __init__(self, client: Any, topic_arn: str) -> None:
        self.client = client
        self.topic_arn = topic_arn

    def payload(self, t: Transition) -> dict[str, Any]:
        return transition_json(t)

    def send(self, t: Transition) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        attributes = {
            name: {"DataType": "String", "StringValue": value}
            for name, value in (
                ("rule", t.rule),
                ("state", t.state),
                ("area_kind", t.area_kind),
                ("area", t.area),
                ("alert_id", t.alert_id),
            )
        }
        try:
            self.client.publish(
                TopicArn=self.topic_arn,
                Subject=f"[{t.state}] {t.rule} {t.area}"[:100],
                Message=json.dumps(self.payload(t), sort_keys=True),
                MessageAttributes=attributes,
            )
        except ClientError as exc:
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
            code = error_code(exc)
            retryable = status >= 500 or status == 429 or "Throttl" in code
            raise DeliveryError(f"sns {code} ({status}): {exc}", retryable=retryable) from exc
        except BotoCoreError as exc:  # endpoint unreachable, read timeout
            raise DeliveryError(f"sns: {type(exc).__name__}: {exc}", retryable=True) from exc


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter, bounded in attempts and in total time."""

    attempts: int = 5
    base_s: float = 0.5
    max_s: float = 8.0
    total_s: float = 30.0

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """Sleep before attempt `attempt + 1` (attempt counts from 1)."""
        return backoff_s(attempt, base_s=self.base_s, cap_s=self.max_s, rng=rng)


class DeliveryState(Protocol):
    """Where delivery keeps its sent keys and dead letters (a directory, or S3 in AWS)."""

    def load(self, name: str) -> dict[str, Any]: ...

    def save(self, name: str, data: Mapping[str, Any]) -> None: ...

    def append_dead_letter(self, record: Mapping[str, Any]) -> None: ...

    def dead_letters(self) -> list[dict[str, Any]]: ...


class LocalDeliveryState:
    """JSON files (sent.json, leases.json: each rewritten atomically, temp file + fsync +
    rename) and dead-letters.jsonl."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def load(self, name: str) -> dict[str, Any]:
        path = self.directory / name
        loaded: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
        return loaded

    def save(self, name: str, data: Mapping[str, Any]) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=f".{name}-", suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as handle:
                json.dump(data, handle, sort_keys=True)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.directory / name)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def append_dead_letter(self, record: Mapping[str, Any]) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        with (self.directory / DEAD_LETTERS_FILE).open("a") as handle:
            handle.write(json.dumps(record, sort_keys=True) + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    def dead_letters(self) -> list[dict[str, Any]]:
        return read_dead_letters(self.directory)


class S3DeliveryState:
    """The same state under an s3:// prefix, for a task whose disk is not kept: each JSON file
    is one object (a PUT replaces it whole, so a reader never sees half of it); each dead letter
    is its own object under dead-letters/ (S3 has no append)."""

    def __init__(self, client: Any, uri: str) -> None:
        bucket, _, prefix = uri.removeprefix("s3://").partition("/")
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""

    def load(self, name: str) -> dict[str, Any]:
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=self.prefix + name)["Body"]
        except self.client.exceptions.NoSuchKey:
            return {}
        loaded: dict[str, Any] = json.loads(body.read())
        return loaded

    def save(self, name: str, data: Mapping[str, Any]) -> None:
        body = json.dumps(data, sort_keys=True).encode()
        self.client.put_object(Bucket=self.bucket, Key=self.prefix + name, Body=body)

    def append_dead_letter(self, record: Mapping[str, Any]) -> None:
        body = json.dumps(record, sort_keys=True).encode()
        name = f"{record['dead_at']}-{hashlib.sha256(body).hexdigest()[:16]}.json"
        self.client.put_object(
            Bucket=self.bucket, Key=f"{self.prefix}dead-letters/{name}", Body=body
        )

    def dead_letters(self) -> list[dict[str, Any]]:
        records = []
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix + "dead-letters/"):
            for item in page.get("Contents", []):
                body = self.client.get_object(Bucket=self.bucket, Key=item["Key"])["Body"]
                records.append(json.loads(body.read()))
        return sorted(records, key=lambda r: (r["dead_at"], r["key"]))


class SentLedger:
    """Which transition keys each destination got, persisted before `record` returns."""

    def __init__(self, state: DeliveryState, *, retention: dt.timedelta) -> None:
        self.state = state
        self.retention = retention
        self._sent: dict[str, dict[str, str]] = state.load(SENT_FILE)

    def has(self, destination: str, key: str) -> bool:
        return key in self._sent.get(destination, {})

    def record(self, destination: str, key: str, outcome: str, at: dt.datetime) -> None:
        """Remember `key` as handled (sent, or dead-lettered) and persist before returning."""
        self._sent.setdefault(destination, {})[key] = f"{outcome} {_iso(at)}"
        self._prune(at)
        self.state.save(SENT_FILE, self._sent)

    def _prune(self, now: dt.datetime) -> None:
        horizon = now - self.retention
        for keys in self._sent.values():
            for key, value in list(keys.items()):
                stamp = dt.datetime.fromisoformat(value.split(" ", 1)[1].replace("Z", "+00:00"))
                if stamp < horizon:
                    del keys[key]


@dataclass
class DeliveryReport:
    """What one `deliver` call did, as (destination, transition key) pairs."""

    sent: list[tuple[str, str]] = field(default_factory=list)
    duplicates: list[tuple[str, str]] = field(default_factory=list)
    dead_letters: list[tuple[str, str]] = field(default_factory=list)
    refreshed: list[tuple[str, str]] = field(default_factory=list)  # (destination, alert_id)
    retries: int = 0


class Notifier:
    """Delivers transitions to every destination, each key once per destination."""

    def __init__(
        self,
        destinations: Sequence[Destination],
        *,
        state_dir: Path | None = None,
        state: DeliveryState | None = None,
        retry: RetryPolicy | None = None,
        metrics: AlertDeliveryMetrics | None = None,
        retention: dt.timedelta = dt.timedelta(days=30),
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.destinations = list(destinations)
        if state is None:
            if state_dir is None:
                raise ValueError("a Notifier needs a state_dir or a state")
            state = LocalDeliveryState(state_dir)
        self.state = state
        self.retry = retry or RetryPolicy()
        self.metrics = metrics if metrics is not None else AlertDeliveryMetrics()
        self.sleep = sleep
        self.monotonic = monotonic
        self.rng = rng or random.Random()
        self.clock = clock
        self.ledger = SentLedger(state, retention=retention)
        # per leasing destination: alert_id -> {"transition": its firing JSON, "renewed": at}
        self.leases: dict[str, dict[str, dict[str, Any]]] = state.load(LEASES_FILE)
        self._logged: set[str] = set()

    def deliver(self, transitions: Sequence[Transition]) -> DeliveryReport:
        """Send each transition not yet sent to each destination (oldest first, a firing
        before its resolved); dead-letter what still fails after the retries."""
        report = DeliveryReport()
        if not self.destinations:  # nowhere to send: one log line per key and process
            for t in transitions:
                if t.key not in self._logged:
                    self._logged.add(t.key)
                    log.warning("alert %s (no destination)", t.state, extra={"key": t.key})
            return report
        ordered = sorted(transitions, key=lambda t: (t.at, _STATE_ORDER.get(t.state, 2)))
        for t in ordered:
            for destination in self.destinations:
                self._deliver_one(destination, t, report)
        self.refresh(report)
        return report

    def refresh(self, report: DeliveryReport | None = None) -> DeliveryReport:
        """Re-send the firing alerts of leasing destinations (Alertmanager) whose lease is
        half gone, with endsAt a full lease from now; call it every cycle (`deliver` does)."""
        report = report if report is not None else DeliveryReport()
        now = self.clock()
        for destination in self.destinations:
            if destination.lease is None:
                continue
            active = self.leases.get(destination.name, {})
            for alert, entry in sorted(active.items()):
                renewed = dt.datetime.fromisoformat(entry["renewed"].replace("Z", "+00:00"))
                if now - renewed < destination.lease / 2:
                    continue
                t = replace(transition_from_json(entry["transition"]), at=now)
                error = self._send_with_retries(destination, t, report)
                outcome = "refresh" if error is None else "refresh_failed"
                self.metrics.alert_notifications.labels(destination.name, outcome).inc()
                if error is not None:  # the lease still runs; the next cycle tries again
                    log.error(
                        "alert lease not renewed",
                        extra={
                            "destination": destination.name,
                            "alert": alert,
                            "error": str(error),
                        },
                    )
                    continue
                entry["renewed"] = _iso(now)
                report.refreshed.append((destination.name, alert))
                self.state.save(LEASES_FILE, self.leases)
        return report

    def _track_lease(self, destination: Destination, t: Transition) -> None:
        if destination.lease is None:
            return
        active = self.leases.setdefault(destination.name, {})
        if t.state == "firing":
            active[t.alert_id] = {"transition": transition_json(t), "renewed": _iso(t.at)}
        else:
            active.pop(t.alert_id, None)
        self.state.save(LEASES_FILE, self.leases)

    def _deliver_one(self, destination: Destination, t: Transition, report: DeliveryReport) -> None:
        name = destination.name
        if self.ledger.has(name, t.key):
            report.duplicates.append((name, t.key))
            self.metrics.alert_notifications.labels(name, "duplicate").inc()
            return
        error = self._send_with_retries(destination, t, report)
        now = self.clock()
        if error is None:
            self.ledger.record(name, t.key, "sent", now)
            self._track_lease(destination, t)
            report.sent.append((name, t.key))
            self.metrics.alert_notifications.labels(name, "sent").inc()
            log.info("alert notified", extra={"destination": name, "key": t.key})
            return
        self._dead_letter(destination, t, error, now)
        self.ledger.record(name, t.key, "dead", now)
        if t.state != "firing":  # a resolved that failed must not leave its firing renewed
            self._track_lease(destination, t)
        report.dead_letters.append((name, t.key))
        self.metrics.alert_notifications.labels(name, "dead").inc()
        self.metrics.alert_dead_letters.labels(name).inc()

    def _send_with_retries(
        self, destination: Destination, t: Transition, report: DeliveryReport
    ) -> DeliveryError | None:
        started = self.monotonic()
        attempt = 0
        while True:
            attempt += 1
            try:
                destination.send(t)
                return None
            except DeliveryError as exc:
                error = exc
            log.warning(
                "alert notification failed",
                extra={
                    "destination": destination.name,
                    "key": t.key,
                    "attempt": attempt,
                    "error": str(error),
                },
            )
            if not error.retryable or attempt >= self.retry.attempts:
                return error
            pause = self.retry.backoff(attempt, self.rng)
            if error.retry_after_s is not None:
                pause = max(pause, min(error.retry_after_s, self.retry.max_s))
            if self.monotonic() - started + pause > self.retry.total_s:
                return DeliveryError(
                    f"gave up after {attempt} attempts within {self.retry.total_s:g} s: {error}",
                    retryable=False,
                )
            report.retries += 1
            self.metrics.alert_notifications.labels(destination.name, "retry").inc()
            self.sleep(pause)

    def _dead_letter(
        self, destination: Destination, t: Transition, error: DeliveryError, now: dt.datetime
    ) -> None:
        record = {
            "dead_at": _iso(now),
            "destination": destination.name,
            "key": t.key,
            "reason": str(error),
            "retryable": error.retryable,
            "transition": transition_json(t),
            "payload": destination.payload(t),
        }
        self.state.append_dead_letter(record)
        log.error(
            "alert notification dead-lettered",
            extra={"destination": destination.name, "key": t.key, "reason": str(error)},
        )


def read_dead_letters(state_dir: Path) -> list[dict[str, Any]]:
    """The dead-letter records in the state dir, oldest first."""
    path = state_dir / DEAD_LETTERS_FILE
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
