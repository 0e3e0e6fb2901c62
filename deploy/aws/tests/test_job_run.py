"""The deploy starts the streaming job (break 5): the Processing stack's custom resource and its
handler, run against botocore's Stubber (which checks every request against Glue's API model)
and a local HTTP server standing in for CloudFormation's pre-signed response URL.

AWS documents followed: the Glue API reference (StartJobRun, GetJobRuns, BatchStopJobRun;
JobRunState values) and the CloudFormation user guide, "Custom resources" (the request fields,
and the response a handler must PUT to ResponseURL)."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import boto3
import pytest
from botocore.stub import Stubber

from signal_aws import job_run_handler
from signal_aws.job_run_handler import handle

JOB = "signal-stream-stream-processor"


@pytest.fixture
def glue() -> Iterator[tuple[Any, Stubber]]:
    client = boto3.client(
        "glue", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def _runs(stubber: Stubber, *states: str) -> None:
    runs = [{"Id": f"jr_{i}", "JobName": JOB, "JobRunState": s} for i, s in enumerate(states)]
    stubber.add_response("get_job_runs", {"JobRuns": runs}, {"JobName": JOB, "MaxResults": 50})


def _event(kind: str, job: dict[str, str] | None = None, old: dict[str, str] | None = None) -> Any:
    event: dict[str, Any] = {
        "RequestType": kind,
        "ResourceProperties": {"ServiceToken": "arn", "JobName": JOB, "Job": job or {"V": "1"}},
        "StackId": "arn:aws:cloudformation:eu-west-1:111111111111:stack/SignalStreamProcessing/1",
        "RequestId": "r-1",
        "LogicalResourceId": "JobRun",
        "ResponseURL": "http://127.0.0.1:1/unused",
    }
    if old is not None:
        event["OldResourceProperties"] = {"JobName": JOB, "Job": old}
    return event


def test_create_starts_a_run(glue: tuple[Any, Stubber]) -> None:
    client, stubber = glue
    _runs(stubber)
    stubber.add_response("start_job_run", {"JobRunId": "jr_new"}, {"JobName": JOB})
    assert handle(_event("Create"), client, deadline=1e12) == "jr_new"


@pytest.mark.parametrize("state", ["STARTING", "RUNNING", "WAITING"])
def test_create_or_update_with_a_run_active_starts_none(
    glue: tuple[Any, Stubber], state: str
) -> None:
    client, stubber = glue
    _runs(stubber, state, "FAILED")
    assert handle(_event("Create"), client, deadline=1e12) == "jr_0"
    _runs(stubber, state)
    same = _event("Update", job={"V": "1"}, old={"V": "1"})
    assert handle(same, client, deadline=1e12) == "jr_0"


def test_update_after_the_run_ended_starts_one_again(glue: tuple[Any, Stubber]) -> None:
    client, stubber = glue
    _runs(stubber, "FAILED", "STOPPED", "SUCCEEDED", "TIMEOUT", "ERROR", "EXPIRED")
    stubber.add_response("start_job_run", {"JobRunId": "jr_new"}, {"JobName": JOB})
    same = _event("Update", job={"V": "1"}, old={"V": "1"})
    assert handle(same, client, deadline=1e12) == "jr_new"


def test_a_changed_job_definition_stops_the_run_waits_and_starts_a_new_one(
    glue: tuple[Any, Stubber],
) -> None:
    client, stubber = glue
    _runs(stubber, "RUNNING")
    stubber.add_response(
        "batch_stop_job_run",
        {"SuccessfulSubmissions": [{"JobName": JOB, "JobRunId": "jr_0"}], "Errors": []},
        {"JobName": JOB, "JobRunIds": ["jr_0"]},
    )
    _runs(stubber, "STOPPING")
    _runs(stubber, "STOPPED")
    _runs(stubber, "STOPPED")
    stubber.add_response("start_job_run", {"JobRunId": "jr_new"}, {"JobName": JOB})
    waits: list[float] = []
    changed = _event("Update", job={"V": "2"}, old={"V": "1"})
    assert handle(changed, client, deadline=1e12, sleep=waits.append) == "jr_new"
    assert waits == [10, 10]


def test_delete_stops_every_active_run_and_waits(glue: tuple[Any, Stubber]) -> None:
    client, stubber = glue
    _runs(stubber, "RUNNING", "STARTING", "FAILED")
    stubber.add_response(
        "batch_stop_job_run",
        {"SuccessfulSubmissions": [], "Errors": []},
        {"JobName": JOB, "JobRunIds": ["jr_0", "jr_1"]},
    )
    _runs(stubber, "STOPPED", "STOPPED", "FAILED")
    assert handle(_event("Delete"), client, deadline=1e12, sleep=lambda s: None) is None


def test_delete_of_a_job_already_gone_succeeds(glue: tuple[Any, Stubber]) -> None:
    client, stubber = glue
    stubber.add_client_error("get_job_runs", service_error_code="EntityNotFoundException")
    assert handle(_event("Delete"), client, deadline=1e12) is None


def test_a_run_that_never_stops_fails_at_the_deadline(glue: tuple[Any, Stubber]) -> None:
    client, stubber = glue
    _runs(stubber, "RUNNING")
    stubber.add_response("batch_stop_job_run", {}, {"JobName": JOB, "JobRunIds": ["jr_0"]})
    with pytest.raises(TimeoutError, match="jr_0"):
        handle(_event("Delete"), client, deadline=0.0)


class _Responses(http.server.BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[str, dict[str, Any]]]]

    def do_PUT(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((self.path, json.loads(body)))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def response_url() -> Iterator[tuple[str, list[tuple[str, dict[str, Any]]]]]:
    received: list[tuple[str, dict[str, Any]]] = []
    handler = type("Handler", (_Responses,), {"received": received})
    server = http.server.HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/response?sig=1", received
    server.shutdown()
    server.server_close()


class _Context:
    def get_remaining_time_in_millis(self) -> int:
        return 840_000


@pytest.mark.parametrize("outcome", ["SUCCESS", "FAILED"])
def test_the_handler_always_answers_cloudformation(
    glue: tuple[Any, Stubber],
    response_url: tuple[str, list[tuple[str, dict[str, Any]]]],
    monkeypatch: pytest.MonkeyPatch,
    outcome: str,
) -> None:
    client, stubber = glue
    url, received = response_url
    if outcome == "SUCCESS":
        _runs(stubber)
        stubber.add_response("start_job_run", {"JobRunId": "jr_new"}, {"JobName": JOB})
    else:
        _runs(stubber)
        stubber.add_client_error(
            "start_job_run", service_error_code="ConcurrentRunsExceededException"
        )
    monkeypatch.setattr(job_run_handler.boto3, "client", lambda service: client)
    event = {**_event("Create"), "ResponseURL": url}
    job_run_handler.handler(event, _Context())
    ((path, body),) = received
    assert path == "/response?sig=1"
    assert body["Status"] == outcome
    assert body["PhysicalResourceId"] == JOB  # stable: an update never replaces the resource
    assert {k: body[k] for k in ("StackId", "RequestId", "LogicalResourceId")} == {
        k: event[k] for k in ("StackId", "RequestId", "LogicalResourceId")
    }
    if outcome == "SUCCESS":
        assert body["Data"] == {"JobRunId": "jr_new"}
    else:
        assert "ConcurrentRunsExceededException" in body["Reason"]


def _resources(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: r for k, r in template["Resources"].items() if r["Type"] == kind}


def test_the_stack_deploys_the_tested_handler_and_starts_the_job_after_creating_it(
    templates: dict[str, Any],
) -> None:
    processing = templates["Processing"]
    ((job_id, job),) = _resources(processing, "AWS::Glue::Job").items()
    ((_, run),) = _resources(processing, "Custom::GlueJobRun").items()
    assert job_id in run["DependsOn"]
    props = run["Properties"]
    assert props["JobName"] == job["Properties"]["Name"] == JOB
    # any change to what the run started with restarts it
    assert props["Job"]["Arguments"] == job["Properties"]["DefaultArguments"]
    assert props["Job"]["WorkerType"] == job["Properties"]["WorkerType"]
    function_id = props["ServiceToken"]["Fn::GetAtt"][0]
    function = processing["Resources"][function_id]["Properties"]
    source = Path(job_run_handler.__file__).read_text("utf-8")
    # CloudFormation's inline ZipFile holds at most 4096 characters
    assert function["Code"]["ZipFile"] == source
    assert len(source) <= 4096
    assert function["Handler"] == "index.handler"
    assert function["Timeout"] == 840  # under Lambda's 15 minutes, the wait is bounded below it
    role = function["Role"]["Fn::GetAtt"][0]
    policies = [
        p["Properties"]["PolicyDocument"]["Statement"]
        for p in _resources(processing, "AWS::IAM::Policy").values()
        if {"Ref": role} in p["Properties"]["Roles"]
    ]
    ((statement,),) = policies
    assert statement["Action"] == ["glue:StartJobRun", "glue:GetJobRuns", "glue:BatchStopJobRun"]
    assert statement["Resource"] == f"arn:aws:glue:eu-west-1:111111111111:job/{JOB}"
