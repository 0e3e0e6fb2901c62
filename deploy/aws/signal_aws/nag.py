"""cdk-nag's AwsSolutions pack on the whole app (cdk-nag 3: a policy-validation plugin that
fails synthesis on an unacknowledged error), and every acknowledgment with its reason."""

from __future__ import annotations

import contextlib
import io
import json
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks
from constructs import IConstruct


@dataclass(frozen=True)
class Finding:
    """Rules acknowledged on every construct whose path contains `where`, and why."""

    where: str
    rules: tuple[str, ...]
    reason: str


PREFIX_SCOPED = (
    "Object-level grants on one bucket's prefix (lake/, lake/<table>/, glue/, checkpoints/, "
    "athena-results/, inputs/, dead-letters/producer/, alert-delivery/) or on CDK's asset "
    "bucket: the wildcard is the object key under that prefix, and the action groups "
    "(GetObject*, List*, ...) are the CDK grant_read/grant_put/grant_read_write sets."
)
# Granular findings (IAM4/IAM5 name the policy, action or resource): acknowledged where the
# finding matches one of these patterns, on the construct it was found on; any other finding
# fails synthesis.
GRANULAR: tuple[tuple[str, str], ...] = (
    (
        r"AwsSolutions-IAM4\[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
        r"AWSLambdaBasicExecutionRole\]",
        "AWSLambdaBasicExecutionRole only (CloudWatch Logs of a Lambda function: ours and CDK's "
        "bucket-notification and deployment handlers); tests/test_iam.py checks the list.",
    ),
    (
        r"AwsSolutions-IAM5\[Action::s3:(GetObject|GetBucket|List|DeleteObject|Abort)\*\]",
        PREFIX_SCOPED,
    ),
    (
        r"AwsSolutions-IAM5\[Resource::(SignalStreamData:ExportsOutputFnGetAttLake[A-Za-z0-9]+"
        r"|arn:<AWS::Partition>:s3:::cdk-[a-z0-9]+-assets-[0-9]+-[a-z0-9-]+)(/[a-z_-]+){0,2}/\*\]",
        PREFIX_SCOPED,
    ),
    (
        r"AwsSolutions-IAM5\[Action::kms:(ReEncrypt|GenerateDataKey)\*\]",
        "CDK's grants on one KMS key (grant_encrypt_decrypt of the Glue job's log key; the alert "
        "topic's key, with grant_publish): the wildcard is the ReEncrypt*/GenerateDataKey* "
        "variants, the resource is that key.",
    ),
    (
        r"AwsSolutions-IAM5\[Resource::\*\]",
        "cloudwatch:PutMetricData (scoped by a namespace condition) and ecr:GetAuthorizationToken "
        "have no resource; tests/test_iam.py allows Resource '*' for exactly these.",
    ),
    (
        r"AwsSolutions-IAM5\[Resource::arn:aws:glue:[a-z0-9-]+:[0-9]+:"
        r"(table|userDefinedFunction)/[a-z_]+/\*\]",
        "Every table of the one Glue database the platform owns (the catalog manager creates "
        "them; readers query them all).",
    ),
    (
        r"AwsSolutions-IAM5\[Resource::arn:aws:logs:[a-z0-9-]+:[0-9]+:log-group:/aws-glue/.*\]",
        "Glue's continuous logging writes log groups under /aws-glue/ it names per run.",
    ),
    (
        r"AwsSolutions-IAM5\[Resource::arn:<AWS::Partition>:ecs:[a-z0-9-]+:\*:task/.*\]",
        "CDK's ScheduledFargateTask lets EventBridge tag the task it starts in this cluster.",
    ),
)
FINDINGS: tuple[Finding, ...] = (
    Finding(
        "Custom::CDKBucketDeployment",
        ("AwsSolutions-L1",),
        "CDK's BucketDeployment handler; its runtime is chosen and updated by aws-cdk-lib.",
    ),
    Finding(
        "SignalStreamServices/AlbLogs",
        ("AwsSolutions-S1",),
        "This bucket receives the load balancer's access logs; logging it to itself would loop.",
    ),
    Finding(
        "SignalStreamServices/Alb/SecurityGroup",
        ("AwsSolutions-EC23",),
        "The internet-facing load balancer serves the dashboard and API to users: ports 80/443 "
        "are open by design; tasks accept traffic only from the load balancer.",
    ),
    Finding(
        "SignalStreamServices/",
        ("AwsSolutions-SMG4",),
        "API key hashes and the dashboard's key are rotated by an operator (deploy/README.md, "
        "'API keys'); the cookie secret only signs sessions. A rotation Lambda would need a "
        "second key slot the services do not read yet.",
    ),
    Finding(
        "/",
        ("AwsSolutions-ECS2",),
        "Environment variables carry only names and sizes (stream, database, workgroup, ports); "
        "every secret comes from Secrets Manager.",
    ),
)


def apply(app: cdk.App, granular: dict[str, list[Finding]] | None = None) -> None:
    """Acknowledge FINDINGS on every matching construct, and `granular` (construct path ->
    findings, from `probe`) on the constructs they were found on."""
    for construct in app.node.find_all():
        path = "/" + construct.node.path
        for finding in FINDINGS:
            if finding.where in path:
                _acknowledge(construct, finding)
        for finding in (granular or {}).get(construct.node.path, []):
            _acknowledge(construct, finding)


def granular_reason(rule: str) -> str | None:
    """The reason a granular finding is acknowledged, or None if it is not."""
    for pattern, reason in GRANULAR:
        if re.fullmatch(pattern, rule):
            return reason
    return None


def probe(build: Callable[[Path], cdk.App]) -> dict[str, list[Finding]]:
    """Synthesize a throwaway copy of the app and return its acknowledgeable granular findings
    by construct path (the real app is built again, the same way, with them acknowledged)."""
    with (
        tempfile.TemporaryDirectory(prefix="signal-nag-") as tmp,
        contextlib.redirect_stdout(io.StringIO()),
        contextlib.redirect_stderr(io.StringIO()),
    ):
        # validation fails here (nothing is acknowledged yet): the report says why
        with contextlib.suppress(RuntimeError):
            build(Path(tmp)).synth()
        report = Path(tmp) / "validation-report.json"
        if not report.exists():
            return {}
        data = json.loads(report.read_text("utf-8"))
    found: dict[str, list[Finding]] = {}
    for plugin in data.get("pluginReports", []):
        for violation in plugin.get("violations", []):
            reason = granular_reason(violation["ruleName"])
            if reason is None:
                continue
            for construct in violation.get("violatingConstructs", []):
                finding = Finding(construct["constructPath"], (violation["ruleName"],), reason)
                found.setdefault(construct["constructPath"], []).append(finding)
    return found


def _acknowledge(construct: IConstruct, finding: Finding) -> None:
    cdk.Validations.of(construct).acknowledge(
        *(cdk.Acknowledgment(id=rule, reason=finding.reason) for rule in finding.rules)
    )


def plugins() -> list[cdk.IPolicyValidationPlugin]:
    """The validation plugins the app runs at synthesis."""
    return [AwsSolutionsChecks()]
