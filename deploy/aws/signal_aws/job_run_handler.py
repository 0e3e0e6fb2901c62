"""Custom resource of the Processing stack: the streaming job runs once deployed.
Create/Update: start a run unless one is active; a changed job definition restarts it (the
checkpoint resumes it). Delete: stop the active runs. Inlined into the template as is."""

from __future__ import annotations

import contextlib
import json
import time
import urllib.request
from collections.abc import Callable
from typing import Any

import boto3

ACTIVE = ("STARTING", "RUNNING", "WAITING", "STOPPING")  # JobRunState values that hold a slot


def active_runs(glue: Any, job: str) -> list[str]:
    """Ids of the job's runs that are not finished (newest first)."""
    runs = glue.get_job_runs(JobName=job, MaxResults=50)["JobRuns"]
    return [run["Id"] for run in runs if run["JobRunState"] in ACTIVE]


def stop_runs(glue: Any, job: str, deadline: float, sleep: Callable[[float], None]) -> None:
    """Stop every active run and wait until none is left (or fail at the deadline)."""
    runs = active_runs(glue, job)
    if runs:
        glue.batch_stop_job_run(JobName=job, JobRunIds=runs)
    while runs:
        if time.monotonic() > deadline:
            raise TimeoutError(f"runs of {job} still stopping: {', '.join(runs)}")
        sleep(10)
        runs = active_runs(glue, job)


def handle(
    event: dict[str, Any],
    glue: Any,
    *,
    deadline: float,
    sleep: Callable[[float], None] = time.sleep,
) -> str | None:
    """Apply one CloudFormation request; returns the job run it left running, if any."""
    props = event["ResourceProperties"]
    job = props["JobName"]
    if event["RequestType"] == "Delete":
        with contextlib.suppress(glue.exceptions.EntityNotFoundException):  # gone already
            stop_runs(glue, job, deadline, sleep)
        return None
    old = event.get("OldResourceProperties", {})
    if event["RequestType"] == "Update" and old.get("Job") != props.get("Job"):
        stop_runs(glue, job, deadline, sleep)  # a new definition runs only in a new run
    runs = active_runs(glue, job)
    if runs:
        return runs[0]
    started: str = glue.start_job_run(JobName=job)["JobRunId"]
    return started


def respond(event: dict[str, Any], status: str, reason: str, data: dict[str, str]) -> None:
    """PUT the result to CloudFormation's pre-signed response URL."""
    body = {
        "Status": status,
        "Reason": reason[:900],
        "PhysicalResourceId": event["ResourceProperties"]["JobName"],
        "StackId": event["StackId"],
        "RequestId": event["RequestId"],
        "LogicalResourceId": event["LogicalResourceId"],
        "Data": data,
    }
    request = urllib.request.Request(
        event["ResponseURL"],
        data=json.dumps(body).encode(),
        method="PUT",
        headers={"Content-Type": ""},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        response.read()


def handler(event: dict[str, Any], context: Any) -> None:
    """Lambda entry point: always answers CloudFormation, with the error when one happened."""
    print(json.dumps({k: v for k, v in event.items() if k != "ResponseURL"}))
    try:
        deadline = time.monotonic() + context.get_remaining_time_in_millis() / 1000 - 60
        run = handle(event, boto3.client("glue"), deadline=deadline)
    except Exception as exc:  # CloudFormation waits an hour for an answer that never comes
        print(f"error: {exc!r}")
        respond(event, "FAILED", f"{type(exc).__name__}: {exc}", {})
        return
    respond(event, "SUCCESS", "ok", {"JobRunId": run or ""})
