"""Least privilege, checked on every IAM statement of every synthesized template."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

# Resource "*" is allowed only where the service has no resource to name, each with the reason
# (and the condition key that must narrow it, where one exists).
STAR_RESOURCE_ALLOWED: dict[str, tuple[str, str | None]] = {
    "cloudwatch:PutMetricData": (
        "metrics have no ARN; the grant is scoped by its namespace",
        "cloudwatch:namespace",
    ),
    "ecr:GetAuthorizationToken": (
        "an ECR login token is account-wide (image pulls themselves are per repository)",
        None,
    ),
}
# AWS managed policies a role may carry (none is *FullAccess), each with the reason.
MANAGED_ALLOWED: dict[str, str] = {
    "service-role/AWSLambdaBasicExecutionRole": "CDK's BucketDeployment Lambda writes its logs",
}


def _statements(templates: dict[str, dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(where, statement) of every identity-policy statement (roles' inline and attached)."""
    for stack, template in templates.items():
        for logical_id, resource in template["Resources"].items():
            props = resource.get("Properties", {})
            documents = []
            if resource["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
                documents.append(props["PolicyDocument"])
            if resource["Type"] == "AWS::IAM::Role":
                documents.extend(p["PolicyDocument"] for p in props.get("Policies", []))
            for document in documents:
                for statement in document["Statement"]:
                    yield f"{stack}/{logical_id}", statement


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_there_are_statements_to_check(templates: dict[str, dict[str, Any]]) -> None:
    assert sum(1 for _ in _statements(templates)) >= 5


def test_no_statement_allows_every_action(templates: dict[str, dict[str, Any]]) -> None:
    for where, statement in _statements(templates):
        actions = _as_list(statement.get("Action", []))
        assert "*" not in actions, (where, statement)
        assert "NotAction" not in statement, (where, statement)


def test_resource_star_only_where_the_service_requires_it(
    templates: dict[str, dict[str, Any]],
) -> None:
    seen = set()
    for where, statement in _statements(templates):
        if statement.get("Effect") != "Allow" or "*" not in _as_list(statement["Resource"]):
            continue
        for action in _as_list(statement["Action"]):
            assert action in STAR_RESOURCE_ALLOWED, f"{where}: {action} on Resource '*'"
            seen.add(action)
            condition_key = STAR_RESOURCE_ALLOWED[action][1]
            if condition_key is not None:
                keys = {k for test in statement.get("Condition", {}).values() for k in test}
                assert condition_key in keys, f"{where}: {action} without {condition_key}"
    assert seen == set(STAR_RESOURCE_ALLOWED)


def test_no_full_access_managed_policy(templates: dict[str, dict[str, Any]]) -> None:
    for stack, template in templates.items():
        for logical_id, resource in template["Resources"].items():
            if resource["Type"] != "AWS::IAM::Role":
                continue
            for arn in resource["Properties"].get("ManagedPolicyArns", []):
                text = json.dumps(arn)
                assert "FullAccess" not in text, f"{stack}/{logical_id}: {text}"
                assert any(name in text for name in MANAGED_ALLOWED), f"{stack}/{logical_id}"


def test_the_processor_role_reaches_only_its_stream_and_bucket(
    templates: dict[str, dict[str, Any]],
) -> None:
    processing = templates["Processing"]["Resources"]
    statements = [
        s
        for logical_id, r in processing.items()
        if r["Type"] == "AWS::IAM::Policy" and logical_id.startswith("JobRole")
        for s in r["Properties"]["PolicyDocument"]["Statement"]
    ]
    actions = {a for s in statements for a in _as_list(s["Action"])}
    assert {"kinesis:GetRecords", "kinesis:GetShardIterator", "s3:PutObject"} <= actions
    assert not any(a.startswith(("iam:", "glue:Delete", "kinesis:Delete")) for a in actions)
    assert not any(a.startswith("kinesis:Put") for a in actions)
