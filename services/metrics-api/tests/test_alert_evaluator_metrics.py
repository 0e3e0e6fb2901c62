"""The evaluator's own /metrics: a real `signal-api alerts evaluate --every 2` process serving
SIGNAL_ALERTS_METRICS_PORT on 127.0.0.1, notifying a real webhook receiver that answers every
request with 503. Its dead letter is read over HTTP from that /metrics (the issue's "counted on
/metrics"), beside the receiver's own log of the attempts and delivery's dead-letter file."""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from alert_fixtures import WINDOW, window_events, write_events
from prometheus_client.parser import text_string_to_metric_families

from signal_api.alerts.delivery import read_dead_letters
from signal_common.lake import alert_events_file
from signal_local.endpoints import ManagedProcess, free_port

SECRET = "metrics-test-secret"
ATTEMPTS = 3
OUTAGE_CODE = "47014"


def wait_until_listening(proc: ManagedProcess, port: int) -> None:
    deadline = time.monotonic() + 120  # a hang guard, not a timing assertion
    while time.monotonic() < deadline:
        if proc.process.poll() is not None:
            raise RuntimeError(f"{proc.name} exited: {proc.log_path.read_text()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{proc.name} did not listen on {port}: {proc.log_path.read_text()}")


def spawn(name: str, args: list[str], env: dict[str, str], out: Path, port: int) -> ManagedProcess:
    with out.open("wb") as handle:
        process = subprocess.Popen(
            [sys.executable, *args],
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return ManagedProcess(name, f"http://127.0.0.1:{port}", process, out)


def lake_with_an_outage(root: Path, now: dt.datetime) -> None:
    """One postal code 90 % OUT_OF_SERVICE over the 30 minutes to now: out_of_service fires at
    the first cycle (>= 20 % of >= 20 events over 15 minutes); the other rules stay clear."""
    base = dt.datetime.fromtimestamp(now.timestamp() // 300 * 300, dt.UTC)
    rng = np.random.default_rng(25)
    frames = [
        window_events(
            rng,
            code=OUTAGE_CODE,
            start=base + WINDOW * i,
            n=60,
            devices=10,
            out_of_service_share=0.9,
        )
        for i in range(-6, 1)
    ]
    write_events(root, pd.concat(frames, ignore_index=True))


def clean_env() -> dict[str, str]:
    """This process's environment without its SIGNAL_API_/SIGNAL_ALERTS_ settings, and with
    its import path (the children import the same sources)."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("SIGNAL_API_", "SIGNAL_ALERTS_"))
    }
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    return env


def start_evaluator(
    lake: Path, out: Path, processes: list[ManagedProcess], **settings: str
) -> tuple[ManagedProcess, dict[str, str], str]:
    """`signal-api alerts evaluate --every 2` over `lake` with its /metrics on a free loopback
    port, once listening: (the process, its environment, its /metrics URL)."""
    metrics_port = free_port()
    env = {
        **clean_env(),
        "SIGNAL_API_LAKE_ROOT": f"file://{lake}",
        "SIGNAL_API_AUTH_ENABLED": "false",
        "SIGNAL_API_LOG_JSON": "false",
        "SIGNAL_ALERTS_METRICS_PORT": str(metrics_port),
        **settings,
    }
    args = ["-m", "signal_api.main", "alerts", "evaluate", "--every", "2"]
    evaluator = spawn("evaluator", args, env, out, metrics_port)
    processes.append(evaluator)
    wait_until_listening(evaluator, metrics_port)
    return evaluator, env, f"http://127.0.0.1:{metrics_port}/metrics"


@pytest.fixture
def processes() -> Iterator[list[ManagedProcess]]:
    started: list[ManagedProcess] = []
    yield started
    for proc in reversed(started):
        proc.stop()


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a /metrics page, parsed by prometheus_client's text parser."""
    text = httpx.get(url, timeout=5).raise_for_status().text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_the_evaluator_counts_its_dead_letter_on_its_own_metrics(
    tmp_path: Path, processes: list[ManagedProcess]
) -> None:
    started = time.time()
    lake, state = tmp_path / "lake", tmp_path / "delivery"
    lake_with_an_outage(lake, dt.datetime.now(dt.UTC))
    base_env = clean_env()

    receiver_port = free_port()
    received = tmp_path / "received.jsonl"
    receiver_args = ["-m", "signal_api.alerts.receiver", "--port", str(receiver_port)]
    receiver_args += ["--secret", SECRET, "--log", str(received)]
    receiver_args += ["--fail-first", "1000000", "--fail-status", "503"]
    receiver = spawn(
        "receiver",
        receiver_args,
        base_env,
        tmp_path / "receiver.out",
        receiver_port,
    )
    processes.append(receiver)
    wait_until_listening(receiver, receiver_port)

    evaluator, evaluator_env, url = start_evaluator(
        lake,
        tmp_path / "evaluator.out",
        processes,
        SIGNAL_ALERTS_WEBHOOK_URL=f"{receiver.url}/hook",
        SIGNAL_ALERTS_WEBHOOK_SECRET=SECRET,
        SIGNAL_ALERTS_STATE_DIR=str(state),
        SIGNAL_ALERTS_RETRY_ATTEMPTS=str(ATTEMPTS),
        SIGNAL_ALERTS_RETRY_BASE_S="0.05",
        SIGNAL_ALERTS_RETRY_MAX_S="0.1",
    )

    # wait for two committed cycles after the dead letter: the second hands the same firing
    # transition again, which must stay one dead letter
    deadline = time.monotonic() + 300  # a hang guard, not a timing assertion
    cycles_after = None
    while True:
        assert evaluator.process.poll() is None, evaluator.log_path.read_text()
        samples = scrape(url)
        committed = samples.get(("signal_alert_cycles_total", (("outcome", "committed"),)), 0.0)
        dead = samples.get(("signal_alert_dead_letters_total", (("destination", "webhook"),)))
        if dead and cycles_after is None:
            cycles_after = committed
        if cycles_after is not None and committed >= cycles_after + 2:
            break
        assert time.monotonic() < deadline, evaluator.log_path.read_text()
        time.sleep(0.5)

    def value(name: str, **labels: str) -> float | None:
        return samples.get((name, tuple(sorted(labels.items()))))

    # the receiver saw every attempt of one notification, each answered 503
    attempts = [json.loads(line) for line in received.read_text().splitlines()]
    assert [a["status"] for a in attempts] == [503] * ATTEMPTS
    assert {a["key"] for a in attempts} == {attempts[0]["key"]}
    key = attempts[0]["key"]
    assert key.startswith(f"out_of_service:postal_code:{OUTAGE_CODE}|firing|")
    (letter,) = read_dead_letters(state)
    assert (letter["destination"], letter["key"]) == ("webhook", key)

    # ... and the evaluator's /metrics says so
    assert value("signal_alert_dead_letters_total", destination="webhook") == 1.0
    assert value("signal_alert_notifications_total", destination="webhook", outcome="dead") == 1.0
    assert (
        value("signal_alert_notifications_total", destination="webhook", outcome="retry")
        == ATTEMPTS - 1
    )
    assert (value("signal_alert_notifications_total", destination="webhook", outcome="sent")) in (
        None,
        0.0,
    )
    # later cycles handed it again: recognised as handled, not sent or dead-lettered twice
    duplicates = value(
        "signal_alert_notifications_total", destination="webhook", outcome="duplicate"
    )
    assert duplicates is not None
    assert duplicates >= 2
    fired = {"rule": "out_of_service", "state": "firing", "correction": "false"}
    assert value("signal_alert_transitions_total", **fired) == 1.0
    assert value("signal_alert_cycles_total", outcome="failed") in (None, 0.0)
    assert (
        value("signal_alert_cycle_seconds_count")
        == samples[("signal_alert_cycles_total", (("outcome", "committed"),))]
    )
    last = value("signal_alert_last_cycle_timestamp_seconds")
    assert last is not None
    assert started - 1 <= last <= time.time()  # evaluation times are whole seconds
    assert value("signal_alert_cycle_areas") == 3.0  # three rules x one postal code
    # the container's health check (`alerts healthcheck`, the deploy's) passes beside it
    check = healthcheck(evaluator_env)
    assert check.returncode == 0, check.stderr
    assert check.stdout.startswith("healthy: the last successful evaluator cycle is "), check


def healthcheck(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`signal-api alerts healthcheck` with the evaluator's environment, as ECS runs it."""
    return subprocess.run(
        [sys.executable, "-m", "signal_api.main", "alerts", "healthcheck"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_health_check_fails_while_every_cycle_fails(
    tmp_path: Path, processes: list[ManagedProcess]
) -> None:
    """A corrupt cycle file makes every cycle fail (lake_unreadable, counted failed): the
    process is up and its /metrics answers, and the health check says unhealthy."""
    now = dt.datetime.now(dt.UTC)
    lake = tmp_path / "lake"
    lake_with_an_outage(lake, now)
    corrupt = lake / alert_events_file(now.replace(microsecond=0) - dt.timedelta(minutes=10))
    corrupt.parent.mkdir(parents=True)
    corrupt.write_bytes(b"not parquet")
    evaluator, env, url = start_evaluator(
        lake,
        tmp_path / "evaluator.out",
        processes,
        SIGNAL_ALERTS_STATE_DIR=str(tmp_path / "delivery"),
    )
    failed = ("signal_alert_cycles_total", (("outcome", "failed"),))
    deadline = time.monotonic() + 300  # a hang guard, not a timing assertion
    while scrape(url).get(failed, 0.0) < 2:
        assert evaluator.process.poll() is None, evaluator.log_path.read_text()
        assert time.monotonic() < deadline, evaluator.log_path.read_text()
        time.sleep(0.5)
    check = healthcheck(env)
    assert evaluator.process.poll() is None  # up, and still unhealthy
    assert check.returncode == 1, check.stdout
    assert check.stderr.strip() == "unhealthy: no evaluator cycle has succeeded yet", check.stderr
    assert "the alert state cannot be read" in evaluator.log_path.read_text()
