"""signal-smoke against the local stack: kinesalite, the real stream processor (local Spark), the
metrics API (DuckDB, API keys on) and the dashboard, wired as `deploy/local:up` wires them, with
the dashboard's API key in moto's Secrets Manager and read through a CDK outputs file.

The local stack has no Glue job and no CloudWatch alarms, so these runs pass `--skip glue
--skip alarms` (test_aws_checks.py runs those two checks against moto server).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import duckdb
import httpx
import pytest

from signal_local.endpoints import LocalAWS, ManagedProcess
from signal_local.stack import _parse_args, services, start_service, wait_for_dashboard
from signal_smoke.core.marker import marker_run

API_KEY = "smoke-test-key-0123456789"
STREAM = "smoke"
UNREAD_STREAM = "smoke-unread"  # a stream no processor reads


def _wait_for_first_batch(api_url: str, processes: list[ManagedProcess], timeout: float) -> None:
    """Block until the processor has committed a batch the API reports (Spark is warm)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for proc in processes:
            assert proc.process.poll() is None, f"{proc.name} exited; see {proc.log_path}"
        try:
            body = httpx.get(f"{api_url}/v1/pipeline", headers={"X-API-Key": API_KEY}).json()
            if body.get("batches"):
                return
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(2)
    raise AssertionError(f"the processor committed no batch within {timeout:.0f} s")


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory,
    kinesalite: ManagedProcess,
    moto_server: ManagedProcess,
    kinesis_client: Any,
) -> Iterator[dict[str, Any]]:
    """The processor, API and dashboard of the local stack on fresh streams and a fresh lake."""
    data = tmp_path_factory.mktemp("smoke-stack")
    for name in (STREAM, UNREAD_STREAM):
        kinesis_client.create_stream(StreamName=name, ShardCount=1)
        kinesis_client.get_waiter("stream_exists").wait(StreamName=name, WaiterConfig={"Delay": 1})
    args = _parse_args(
        ["--data-dir", str(data), "--stream", STREAM, "--trigger-seconds", "2",
         "--api-port", "0", "--dashboard-port", "0"]
    )  # fmt: skip
    local = LocalAWS(kinesis=kinesalite, moto=moto_server)
    wanted = {"stream-processor", "metrics-api", "dashboard"}
    planned = {s.name: s for s in services(local, args) if s.name in wanted}
    key_hash = hashlib.sha256(API_KEY.encode()).hexdigest()
    planned["metrics-api"] = dataclasses.replace(
        planned["metrics-api"],
        env={
            **planned["metrics-api"].env,
            "SIGNAL_API_AUTH_ENABLED": "true",
            "SIGNAL_API_API_KEYS_SHA256": json.dumps([f"dashboard:{key_hash}"]),
        },
    )
    planned["dashboard"] = dataclasses.replace(
        planned["dashboard"],
        env={**planned["dashboard"].env, "SIGNAL_DASHBOARD_API_KEY": API_KEY},
    )
    log_dir = data / "logs"
    log_dir.mkdir()
    running = [start_service(s, log_dir) for s in planned.values()]
    try:
        api_url = planned["metrics-api"].url
        # one warm-up record: the first batch pays for Spark's start, not the smoke's timings
        warm = marker_run("warmup", dt.datetime.now(dt.UTC), count=1).records[0]
        kinesis_client.put_record(
            StreamName=STREAM, Data=warm.data, PartitionKey=warm.partition_key
        )
        _wait_for_first_batch(api_url, running, timeout=400)
        wait_for_dashboard(running, timeout=120)
        secrets = boto3.client(
            "secretsmanager", endpoint_url=moto_server.url, region_name="us-east-1"
        )
        arn = secrets.create_secret(Name=f"DashboardApiKey-{data.name}", SecretString=API_KEY)[
            "ARN"
        ]
        outputs = data / "outputs.json"
        # the shape `cdk deploy --outputs-file` writes (no ALB here: API and dashboard are
        # on their own ports, given by flag)
        outputs.write_text(
            json.dumps(
                {
                    "SignalStreamData": {"StreamName": STREAM},
                    "SignalStreamServices": {"DashboardApiKeySecret": arn},
                }
            )
        )
        yield {
            "data": data,
            "outputs": outputs,
            "base_argv": [
                "--api-url", api_url,
                "--dashboard-url", planned["dashboard"].url,
                "--kinesis-endpoint-url", kinesalite.url,
                "--secretsmanager-endpoint-url", moto_server.url,
                "--skip", "glue", "--skip", "alarms",
                "--poll", "1",
            ],
        }  # fmt: skip
    finally:
        for proc in reversed(running):
            proc.stop()


def _marked_rows_in_lake(data: Path, run_id: str) -> int:
    """Independent oracle: the marked events the processor wrote into the lake's events table."""
    files = list((data / "lake" / "events").glob("dt=*/hour=*/*.parquet"))
    if not files:
        return 0
    paths = [str(f) for f in files]
    rows = duckdb.execute(
        "SELECT COUNT(*) FROM read_parquet($paths, union_by_name=true) WHERE device_id = $device",
        {"paths": paths, "device": f"smoke-{run_id}"},
    ).fetchall()
    return int(rows[0][0])


def test_every_check_passes_against_the_local_stack(
    stack: dict[str, Any], run_smoke: Any, check_line: Any
) -> None:
    result, took = run_smoke(
        ["--outputs", str(stack["outputs"]), *stack["base_argv"], "--run-id", "e2e",
         "--timeout", "240"],
        timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert check_line(out, "events sent").startswith("ok ")
    sent = check_line(out, "events sent")
    assert "20 marked events (run e2e, " in sent
    assert sent.endswith(" to smoke")
    assert check_line(out, "events visible in /v1/summary").startswith("ok ")
    assert ": 20 of 20 marked events" in check_line(out, "events visible in /v1/summary")
    assert check_line(out, "events visible in /v1/pipeline").startswith("ok ")
    assert check_line(out, "Glue job RUNNING").endswith("skipped by --skip glue")
    assert check_line(out, "alarms OK").endswith("skipped by --skip alarms")
    assert check_line(out, "dashboard answers").startswith("ok ")
    assert "API key: the key in arn:aws:secretsmanager:us-east-1:" in out
    assert out.splitlines()[-1].startswith("smoke passed: 4 ok, 0 failed, 2 skipped in ")
    # the events really are in the lake, each once
    assert _marked_rows_in_lake(stack["data"], "e2e") == 20
    assert took < 240


def test_a_wrong_api_key_fails_on_its_lines_at_once(
    stack: dict[str, Any], run_smoke: Any, check_line: Any
) -> None:
    result, took = run_smoke(
        [*stack["base_argv"], "--stream", STREAM, "--region", "us-east-1",
         "--api-key", "not-the-key", "--timeout", "60"],
        timeout=120,
    )  # fmt: skip
    assert result.returncode == 1
    refused = "the API refused the key: 403 unknown_api_key (the API key is not recognised)"
    for check in ("events visible in /v1/summary", "events visible in /v1/pipeline"):
        line = check_line(result.stdout, check)
        assert line.startswith("FAIL ")
        assert line.endswith(refused)
    assert check_line(result.stdout, "events sent").startswith("ok ")
    assert check_line(result.stdout, "dashboard answers").startswith("ok ")
    assert result.stdout.splitlines()[-1].startswith("smoke FAILED: 2 ok, 2 failed, 2 skipped")
    assert took < 60  # a refusal is final: no waiting


def test_events_nobody_reads_fail_on_their_lines_within_the_timeout(
    stack: dict[str, Any], run_smoke: Any, check_line: Any
) -> None:
    result, took = run_smoke(
        [*stack["base_argv"], "--stream", UNREAD_STREAM, "--region", "us-east-1",
         "--api-key", API_KEY, "--timeout", "15", "--skip", "dashboard"],
        timeout=120,
    )  # fmt: skip
    assert result.returncode == 1
    summary = check_line(result.stdout, "events visible in /v1/summary")
    assert summary.startswith("FAIL ")
    assert summary.endswith("(gave up after 15 s)")
    assert "not reported yet" in summary or ": 0 of 20 marked events" in summary
    pipeline = check_line(result.stdout, "events visible in /v1/pipeline")
    assert pipeline.startswith("FAIL ")
    assert pipeline.endswith("; the marked events never showed in /v1/summary")
    assert "… events visible in /v1/summary:" in result.stderr  # progress while it waited
    assert took < 15 + 30
