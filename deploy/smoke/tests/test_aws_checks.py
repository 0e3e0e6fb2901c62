"""The Glue-job and alarm checks through the command, against moto server's Glue and CloudWatch
APIs (the calls signal-smoke makes in AWS: glue GetJobRuns, cloudwatch DescribeAlarms).

moto advances a job run's state on each GetJobRuns through its state manager
(STARTING -> RUNNING -> SUCCEEDED); `manual` progression with `times` holds each state for that
many calls. The states and their meaning are the Glue API's (JobRun.JobRunState:
https://docs.aws.amazon.com/glue/latest/dg/aws-glue-api-jobs-runs.html).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import httpx
import pytest

from signal_local.endpoints import ManagedProcess


@pytest.fixture
def glue_runs_hold(moto_server: ManagedProcess) -> Iterator[Any]:
    """Set moto's job-run progression for one test: `hold(times)` keeps each state that many
    GetJobRuns calls; unset afterwards (the server is shared by the session)."""

    def hold(times: int) -> None:
        httpx.post(
            f"{moto_server.url}/moto-api/state-manager/set-transition",
            json={
                "model_name": "glue::job_run",
                "transition": {"progression": "manual", "times": times},
            },
        ).raise_for_status()

    yield hold
    httpx.post(
        f"{moto_server.url}/moto-api/state-manager/unset-transition",
        json={"model_name": "glue::job_run"},
    ).raise_for_status()


@pytest.fixture
def names() -> dict[str, str]:
    tag = uuid.uuid4().hex[:8]
    return {
        "job": f"signal-stream-stream-processor-{tag}",
        "prefix": f"SignalStreamMonitoring{tag}-",
    }


def _job_and_alarms(moto_url: str, names: dict[str, str], *, start: bool) -> Any:
    glue = boto3.client("glue", endpoint_url=moto_url, region_name="us-east-1")
    glue.create_job(
        Name=names["job"],
        Role="arn:aws:iam::123456789012:role/job",
        Command={"Name": "gluestreaming", "ScriptLocation": "s3://b/glue_job.py"},
    )
    if start:
        glue.start_job_run(JobName=names["job"])
    cloudwatch = boto3.client("cloudwatch", endpoint_url=moto_url, region_name="us-east-1")
    for alarm in ("StreamIteratorAge", "ProcessorConsumerLag", "Api5xx"):
        cloudwatch.put_metric_alarm(
            AlarmName=f"{names['prefix']}{alarm}-ABC123",
            Namespace="SignalStream/StreamProcessor",
            MetricName="MillisBehindLatest",
            Statistic="Maximum",
            Period=60,
            EvaluationPeriods=5,
            Threshold=50_000,
            ComparisonOperator="GreaterThanOrEqualToThreshold",
        )
    return cloudwatch


def _argv(moto_url: str, names: dict[str, str], *extra: str) -> list[str]:
    return [
        "--skip", "events", "--skip", "dashboard", "--region", "us-east-1",
        "--glue-job", names["job"], "--glue-endpoint-url", moto_url,
        "--cloudwatch-endpoint-url", moto_url, "--poll", "0.2", *extra,
    ]  # fmt: skip


def test_a_running_job_and_ok_alarms_pass(
    moto_server: ManagedProcess,
    glue_runs_hold: Any,
    names: dict[str, str],
    run_smoke: Any,
    check_line: Any,
) -> None:
    glue_runs_hold(2)  # STARTING for the first call, RUNNING for the next
    _job_and_alarms(moto_server.url, names, start=True)
    result, _ = run_smoke(
        _argv(moto_server.url, names, "--alarm-prefix", names["prefix"], "--timeout", "30")
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert check_line(result.stdout, "Glue job RUNNING").startswith("ok ")
    assert check_line(result.stdout, "alarms OK").endswith("3 alarms OK")
    for check in ("events sent", "events visible in /v1/summary", "events visible in /v1/pipeline"):
        assert check_line(result.stdout, check).endswith("skipped by --skip events")
    assert check_line(result.stdout, "dashboard answers").endswith("skipped by --skip dashboard")
    assert result.stdout.splitlines()[-1].startswith("smoke passed: 2 ok, 0 failed, 4 skipped")


def test_a_finished_job_and_a_firing_alarm_fail_on_their_lines(
    moto_server: ManagedProcess, names: dict[str, str], run_smoke: Any, check_line: Any
) -> None:
    cloudwatch = _job_and_alarms(moto_server.url, names, start=True)  # moto: SUCCEEDED at once
    firing = f"{names['prefix']}ProcessorConsumerLag-ABC123"
    cloudwatch.set_alarm_state(AlarmName=firing, StateValue="ALARM", StateReason="test")
    result, _ = run_smoke(
        _argv(moto_server.url, names, "--alarm-prefix", names["prefix"], "--timeout", "2")
    )
    assert result.returncode == 1
    glue = check_line(result.stdout, "Glue job RUNNING")
    assert glue.startswith("FAIL ")
    assert "is SUCCEEDED, not RUNNING" in glue
    alarms = check_line(result.stdout, "alarms OK")
    assert alarms.startswith("FAIL ")
    assert alarms.endswith(f"1 of 3 not OK: {firing} ALARM (gave up after 2 s)")


def test_a_job_never_started_and_a_missing_alarm_are_named(
    moto_server: ManagedProcess, names: dict[str, str], run_smoke: Any, check_line: Any
) -> None:
    _job_and_alarms(moto_server.url, names, start=False)
    wanted = f"{names['prefix']}Api5xx-ABC123,{names['prefix']}Gone-XYZ"
    result, _ = run_smoke(_argv(moto_server.url, names, "--alarm-names", wanted, "--timeout", "30"))
    assert result.returncode == 1
    assert check_line(result.stdout, "Glue job RUNNING").endswith(
        f"the Glue job {names['job']} has no run: nothing started it"
    )
    assert check_line(result.stdout, "alarms OK").endswith(
        f"no such alarm: {names['prefix']}Gone-XYZ"
    )


def test_a_job_that_does_not_exist_is_one_sentence(
    moto_server: ManagedProcess, run_smoke: Any, check_line: Any
) -> None:
    names = {"job": "no-such-job", "prefix": "x"}
    result, _ = run_smoke(_argv(moto_server.url, names, "--skip", "alarms", "--timeout", "30"))
    assert result.returncode == 1
    line = check_line(result.stdout, "Glue job RUNNING")
    assert "Glue refused GetJobRuns of no-such-job: EntityNotFoundException" in line


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--skip", "events", "--skip", "dashboard", "--region", "r", "--skip", "alarms"],
         "error: no Glue job name: pass --glue-job, an outputs file with GlueJobName, or --skip"),
        (["--outputs", "/nonexistent/outputs.json"], "error: cannot read the outputs file"),
        (["--skip", "nothing"], "invalid choice: 'nothing'"),
    ],
)  # fmt: skip
def test_what_cannot_run_is_one_error_line(argv: list[str], message: str, run_smoke: Any) -> None:
    result, _ = run_smoke(argv)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
