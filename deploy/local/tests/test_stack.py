"""The local stack's wiring: the compaction service, the alert evaluator and where it delivers,
the outage that ends, and the refusal of an older lake."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import urllib.request
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from signal_local.stack import (
    ALERTMANAGER,
    Service,
    _parse_args,
    lake_without_lineage,
    services,
    start_service,
)

INSTALLED_ALERTMANAGER = shutil.which(ALERTMANAGER)


class _Stack:
    def env(self) -> dict[str, str]:
        return {"SIGNAL_KINESIS_ENDPOINT_URL": "http://127.0.0.1:1"}


def test_the_stack_compacts_the_lake_on_a_schedule(tmp_path: Path) -> None:
    args = _parse_args(["--data-dir", str(tmp_path), "--compact-every", "120"])
    compaction = next(s for s in services(_Stack(), args) if s.name == "lake-compaction")  # type: ignore[arg-type]
    assert (compaction.module, compaction.args) == (
        "signal_catalog.cli",
        ("compact", "--every", "120.0"),
    )
    assert compaction.env["SIGNAL_CATALOG_LAKE_ROOT"] == f"file://{tmp_path.resolve()}/lake"
    assert compaction.env["SIGNAL_CATALOG_COMPACT_GRACE_S"] == "3600.0"


def test_the_stack_runs_one_alert_evaluator_over_the_apis_lake(tmp_path: Path) -> None:
    args = _parse_args(["--data-dir", str(tmp_path)])
    planned = services(_Stack(), args)  # type: ignore[arg-type]
    evaluators = [s for s in planned if s.args[:2] == ("alerts", "evaluate")]
    assert [(s.name, s.module) for s in evaluators] == [("alert-evaluator", "signal_api.main")]
    api = next(s for s in planned if s.name == "metrics-api")
    assert evaluators[0].env["SIGNAL_API_LAKE_ROOT"] == api.env["SIGNAL_API_LAKE_ROOT"]


def _plan(tmp_path: Path, *argv: str) -> dict[str, Service]:
    args = _parse_args(["--data-dir", str(tmp_path), *argv])
    return {s.name: s for s in services(_Stack(), args)}  # type: ignore[arg-type]


def test_alertmanager_is_found_on_path_when_installed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", str(bin_dir))
    assert _parse_args([]).alertmanager is None
    binary = bin_dir / "prometheus-alertmanager"
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    assert _parse_args([]).alertmanager == str(binary)
    assert _parse_args(["--no-alertmanager"]).alertmanager is None


def test_with_alertmanager_the_evaluator_delivers_to_it_and_to_the_receiver(
    tmp_path: Path,
) -> None:
    plan = _plan(tmp_path, "--alertmanager", "/opt/am/prometheus-alertmanager")
    am, receiver, evaluator = plan["alertmanager"], plan["alert-receiver"], plan["alert-evaluator"]
    assert am.command()[0] == "/opt/am/prometheus-alertmanager"
    data = tmp_path.resolve()
    ((config, _),) = am.files
    assert config == data / "alertmanager" / "alertmanager.yml"
    assert f"--config.file={config}" in am.args
    assert f"--storage.path={data / 'alertmanager' / 'data'}" in am.args
    assert "--cluster.listen-address=" in am.args
    am_port = int(am.url.rsplit(":", 1)[1])
    assert am.url == f"http://127.0.0.1:{am_port}"
    assert f"--web.listen-address=127.0.0.1:{am_port}" in am.args
    assert evaluator.env["SIGNAL_ALERTS_ALERTMANAGER_URL"] == am.url
    # the signed webhook goes to the receiver either way: its log is the record
    assert evaluator.env["SIGNAL_ALERTS_WEBHOOK_URL"].startswith(receiver.url + "/")
    secret = receiver.args[receiver.args.index("--secret") + 1]
    assert evaluator.env["SIGNAL_ALERTS_WEBHOOK_SECRET"] == secret
    assert receiver.args[receiver.args.index("--log") + 1] == str(
        data / "logs" / "alerts-received.jsonl"
    )
    assert evaluator.env["SIGNAL_ALERTS_STATE_DIR"] == str(data / "alert-delivery")
    assert evaluator.env["SIGNAL_ALERTS_DASHBOARD_URL"] == plan["dashboard"].url
    assert len({am.url, receiver.url, plan["metrics-api"].url, plan["dashboard"].url}) == 4


def test_without_alertmanager_the_receiver_alone_gets_the_notifications(tmp_path: Path) -> None:
    plan = _plan(tmp_path, "--no-alertmanager")
    assert "alertmanager" not in plan
    evaluator, receiver = plan["alert-evaluator"], plan["alert-receiver"]
    assert "SIGNAL_ALERTS_ALERTMANAGER_URL" not in evaluator.env
    assert evaluator.env["SIGNAL_ALERTS_WEBHOOK_URL"].startswith(receiver.url + "/")
    assert (receiver.module, receiver.command()[1:3]) == (
        "signal_api.alerts.receiver",
        ["-m", "signal_api.alerts.receiver"],
    )


def test_the_evaluator_serves_its_metrics_on_a_port_of_its_own(tmp_path: Path) -> None:
    plan = _plan(tmp_path, "--no-alertmanager")
    evaluator = plan["alert-evaluator"]
    port = evaluator.env["SIGNAL_ALERTS_METRICS_PORT"]
    assert evaluator.url == f"http://127.0.0.1:{port}/metrics"
    ports = {s.url.split(":")[2].split("/")[0] for s in plan.values() if s.url}
    assert len(ports) == len([s for s in plan.values() if s.url])  # evaluator's among them


def test_the_outage_begins_after_the_start_and_ends(tmp_path: Path) -> None:
    producer = _plan(tmp_path, "--outage-after", "3", "--outage-minutes", "10")["producer"]
    outage = producer.args[producer.args.index("--outage") + 1]
    assert outage == "47014,47015@+3m/+13m"
    start = dt.datetime.fromisoformat(producer.args[producer.args.index("--start-time") + 1])
    assert abs(start - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=1)


def test_the_api_publishes_the_rules_the_evaluator_applies(tmp_path: Path) -> None:
    plan = _plan(tmp_path)
    api, evaluator = plan["metrics-api"], plan["alert-evaluator"]
    rules = {k: v for k, v in evaluator.env.items() if k.startswith("SIGNAL_API_ALERT_")}
    assert rules["SIGNAL_API_ALERT_WINDOW_MINUTES"] == "1"
    assert rules == {k: v for k, v in api.env.items() if k.startswith("SIGNAL_API_ALERT_")}


def test_the_installed_alertmanager_accepts_the_stacks_config(tmp_path: Path) -> None:
    if INSTALLED_ALERTMANAGER is None:
        pytest.fail(
            "prometheus-alertmanager is missing: apt-get install -y prometheus-alertmanager "
            "(.ci/run installs it)"
        )
    plan = _plan(tmp_path, "--alertmanager", str(INSTALLED_ALERTMANAGER))
    (tmp_path / "logs").mkdir()
    proc = start_service(plan["alertmanager"], tmp_path / "logs")  # waits for /-/ready
    try:
        with urllib.request.urlopen(f"{proc.url}/api/v2/status", timeout=10) as response:
            status = json.load(response)
        assert status["config"]["original"].startswith("global:")
        assert "receiver: signal-local" in status["config"]["original"]
        assert status["cluster"]["status"] == "disabled"
        with urllib.request.urlopen(f"{proc.url}/api/v2/alerts", timeout=10) as response:
            assert json.load(response) == []
    finally:
        proc.stop()
    assert proc.process.returncode is not None


def test_a_lake_written_before_the_lineage_columns_is_named(tmp_path: Path) -> None:
    part = tmp_path / "status_count" / "dt=2026-11-23" / "hour=7"
    part.mkdir(parents=True)
    assert lake_without_lineage(tmp_path) is None
    pq.write_table(pa.table({"event_count": [1], "commit_seq": [1]}), part / "new.parquet")
    assert lake_without_lineage(tmp_path) is None
    pq.write_table(pa.table({"event_count": [1]}), part / "old.parquet")
    assert lake_without_lineage(tmp_path) == part / "old.parquet"
