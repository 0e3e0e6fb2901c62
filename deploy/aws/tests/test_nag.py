"""cdk-nag's AwsSolutions checks run on every synthesis of the app: no unacknowledged finding,
and every acknowledgment carries its reason."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_s3 as s3

from signal_aws import nag


def test_the_app_synthesizes_with_cdk_nag_and_no_unacknowledged_finding(assembly: Any) -> None:
    # build() adds the plugin; synthesis raises on any unacknowledged finding, so reaching
    # here means none. The report, when written, must say so.
    report = Path(assembly.directory) / "validation-report.json"
    if report.exists():
        data = json.loads(report.read_text("utf-8"))
        for plugin in data["pluginReports"]:
            assert plugin["conclusion"] == "success", plugin
    assert len(assembly.stacks) == 6


def test_the_checks_do_run_and_fail_an_insecure_resource(tmp_path: Path) -> None:
    app = cdk.App(outdir=str(tmp_path))
    cdk.Validations.of(app).add_plugins(*nag.plugins())
    stack = cdk.Stack(
        app, "Insecure", env=cdk.Environment(account="111111111111", region="eu-west-1")
    )
    s3.Bucket(stack, "Open")  # no TLS-only policy, no access logs
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()
    report = json.loads((tmp_path / "validation-report.json").read_text("utf-8"))
    rules = {v["ruleName"] for p in report["pluginReports"] for v in p["violations"]}
    assert {"AwsSolutions-S1", "AwsSolutions-S10"} <= rules


def test_every_acknowledgment_has_a_reason() -> None:
    for finding in nag.FINDINGS:
        assert finding.rules, finding
        assert len(finding.reason) > 40, finding
    for pattern, reason in nag.GRANULAR:
        assert pattern.startswith("AwsSolutions-IAM"), pattern
        assert len(reason) > 40, pattern


def test_only_documented_granular_findings_are_acknowledged() -> None:
    assert nag.granular_reason("AwsSolutions-IAM5[Action::s3:GetObject*]")
    assert nag.granular_reason("AwsSolutions-IAM5[Resource::*]")
    assert nag.granular_reason("AwsSolutions-IAM5[Action::s3:*]") is None
    assert nag.granular_reason("AwsSolutions-IAM5[Action::iam:*]") is None
    assert (
        nag.granular_reason(
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/AmazonS3FullAccess]"
        )
        is None
    )
