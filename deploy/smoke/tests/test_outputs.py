"""Reading `cdk deploy --outputs-file` JSON and resolving what to check from it and flags."""

from __future__ import annotations

import json

import pytest

from signal_smoke.core.errors import ConfigError
from signal_smoke.core.outputs import OutputsError, alb_url, parse_outputs, region_of_arn
from signal_smoke.core.target import Given, resolve_target

# the shape the CDK CLI writes: one object per stack, its CfnOutput keys and values
OUTPUTS = {
    "SignalStreamData": {"StreamName": "mobile_coverage_logs"},
    "SignalStreamProcessing": {"GlueJobName": "signal-stream-stream-processor"},
    "SignalStreamServices": {
        "AlbDnsName": "Signa-Alb-1A2B3C.eu-west-1.elb.amazonaws.com",
        "ClusterName": "SignalStreamServices-Cluster",
        "DashboardApiKeySecret": (
            "arn:aws:secretsmanager:eu-west-1:123456789012:secret:DashboardApiKey-AbCdEf"
        ),
    },
    "SignalStreamMonitoring": {"AlarmNames": "SignalStreamMonitoring-Alb5xx-1, Sig-Api5xx-2"},
}
ALL = frozenset()


def test_outputs_of_every_stack_are_read_as_one_mapping() -> None:
    flat = parse_outputs(json.dumps(OUTPUTS))
    assert flat["StreamName"] == "mobile_coverage_logs"
    assert flat["AlbDnsName"] == "Signa-Alb-1A2B3C.eu-west-1.elb.amazonaws.com"
    assert flat["ClusterName"] == "SignalStreamServices-Cluster"
    assert len(flat) == 6


def test_an_output_two_stacks_disagree_on_is_refused() -> None:
    with pytest.raises(OutputsError, match="'LogGroup' differs between stacks 'A' and 'B'"):
        parse_outputs(json.dumps({"A": {"LogGroup": "x"}, "B": {"LogGroup": "y"}}))
    assert parse_outputs(json.dumps({"A": {"K": "x"}, "B": {"K": "x"}})) == {"K": "x"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "is not JSON"),
        ("[1, 2]", "not a JSON object of stacks"),
        ('{"S": "v"}', "stack 'S' in the outputs file is not an object"),
    ],
)
def test_a_file_that_is_not_cdk_outputs_says_so(text: str, message: str) -> None:
    with pytest.raises(OutputsError, match=message):
        parse_outputs(text)


def test_urls_and_regions_are_derived() -> None:
    assert alb_url("abc.elb.amazonaws.com") == "http://abc.elb.amazonaws.com"
    assert alb_url("https://signal.example.com/") == "https://signal.example.com"
    assert region_of_arn("arn:aws:secretsmanager:eu-west-1:1:secret:k-1") == "eu-west-1"
    assert region_of_arn("my-secret-name") is None


def test_the_target_comes_from_the_outputs_file() -> None:
    target = resolve_target(Given(), parse_outputs(json.dumps(OUTPUTS)), skip=ALL)
    assert target.api_url == "http://Signa-Alb-1A2B3C.eu-west-1.elb.amazonaws.com"
    assert target.dashboard_url == target.api_url
    assert target.stream == "mobile_coverage_logs"
    assert target.glue_job == "signal-stream-stream-processor"
    assert target.alarm_names == ("SignalStreamMonitoring-Alb5xx-1", "Sig-Api5xx-2")
    assert target.alarm_prefix is None
    assert target.region == "eu-west-1"  # from the secret's ARN
    assert target.api_key_secret is not None
    assert target.api_key_secret.endswith(":secret:DashboardApiKey-AbCdEf")
    assert target.notes == ()


def test_flags_win_over_outputs() -> None:
    given = Given(
        api_url="http://127.0.0.1:8080",
        dashboard_url="http://127.0.0.1:8501",
        stream="other",
        api_key="k",
        alarm_prefix="ignored-when-names-are-output",
        region="us-east-1",
    )
    target = resolve_target(given, parse_outputs(json.dumps(OUTPUTS)), skip=ALL)
    assert (target.api_url, target.dashboard_url) == (
        "http://127.0.0.1:8080",
        "http://127.0.0.1:8501",
    )
    assert (target.stream, target.region, target.api_key) == ("other", "us-east-1", "k")
    assert target.api_key_secret is None
    assert target.notes == ("the API key was given directly; the secret is not read",)


@pytest.mark.parametrize(
    ("missing", "skip", "message"),
    [
        ("GlueJobName", ALL, "no Glue job name: pass --glue-job, .* or --skip glue"),
        ("AlarmNames", ALL, "no alarms: pass --alarm-names or --alarm-prefix, .* or --skip alarms"),
        ("AlbDnsName", frozenset({"dashboard"}), "no API URL"),
        ("AlbDnsName", frozenset({"events"}), "no dashboard URL: .* or --skip dashboard"),
    ],
)
def test_a_missing_output_is_named_unless_its_check_is_skipped(
    missing: str, skip: frozenset[str], message: str
) -> None:
    outputs = {k: v for k, v in parse_outputs(json.dumps(OUTPUTS)).items() if k != missing}
    with pytest.raises(ConfigError, match=message):
        resolve_target(Given(), outputs, skip=skip)
    check = {"GlueJobName": "glue", "AlarmNames": "alarms", "AlbDnsName": "events"}[missing]
    everything = skip | {check, "dashboard"}
    assert resolve_target(Given(), outputs, skip=everything).region == "eu-west-1"


def test_a_stream_without_output_or_flag_is_the_default_and_says_so() -> None:
    outputs = {k: v for k, v in parse_outputs(json.dumps(OUTPUTS)).items() if k != "StreamName"}
    target = resolve_target(Given(default_stream="mobile_coverage_logs"), outputs, skip=ALL)
    assert target.stream == "mobile_coverage_logs"
    assert target.notes == (
        "stream mobile_coverage_logs is the default (no --stream, no StreamName output)",
    )


def test_no_region_anywhere_is_an_error() -> None:
    given = Given(alb_url="http://x", stream="s", api_key_secret="by-name", glue_job="j")
    with pytest.raises(ConfigError, match="no AWS region"):
        resolve_target(given, {}, skip=frozenset({"alarms"}))
    assert (
        resolve_target(
            Given(**{**given.__dict__, "fallback_region": "eu-north-1"}),
            {},
            skip=frozenset({"alarms"}),
        ).region
        == "eu-north-1"
    )


def test_alarm_names_and_prefix_together_are_refused() -> None:
    given = Given(alb_url="http://x", stream="s", region="r", alarm_names="a", alarm_prefix="p")
    with pytest.raises(ConfigError, match="not both"):
        resolve_target(given, {}, skip=frozenset({"glue"}))
