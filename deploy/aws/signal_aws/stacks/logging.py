"""CloudWatch log groups of the platform's containers and functions: one month, encrypted with
a key of their stack, removed with their stack (the data lives in the lake, not in the logs)."""

from __future__ import annotations

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from constructs import Construct

LOGS_KEY_ID = "LogsKey"


def logs_key_statement(scope: Construct, log_groups: str) -> iam.PolicyStatement:
    """The key-policy statement that lets CloudWatch Logs use a key for the log groups named
    by `log_groups` (a pattern), as "Encrypt log data in CloudWatch Logs using AWS KMS" and
    Glue's "Setting up encryption in AWS Glue" give it: Encrypt*, Decrypt*, ReEncrypt*,
    GenerateDataKey* and Describe*, only in the encryption context of those log groups."""
    stack = Stack.of(scope)
    return iam.PolicyStatement(
        sid="CloudWatchLogs",
        principals=[iam.ServicePrincipal(f"logs.{stack.region}.amazonaws.com")],
        actions=[
            "kms:Encrypt*",
            "kms:Decrypt*",
            "kms:ReEncrypt*",
            "kms:GenerateDataKey*",
            "kms:Describe*",
        ],
        resources=["*"],  # in a key policy, "*" is this key
        conditions={
            "ArnLike": {
                "kms:EncryptionContext:aws:logs:arn": (
                    f"arn:aws:logs:{stack.region}:{stack.account}:log-group:{log_groups}"
                )
            }
        },
    )


def logs_key(scope: Construct) -> kms.Key:
    """The stack's key of its log groups (created once per stack)."""
    stack = Stack.of(scope)
    found = stack.node.try_find_child(LOGS_KEY_ID)
    if isinstance(found, kms.Key):
        return found
    key = kms.Key(
        stack,
        LOGS_KEY_ID,
        enable_key_rotation=True,
        description=f"CloudWatch log groups of {stack.stack_name}",
        removal_policy=RemovalPolicy.DESTROY,
    )
    key.add_to_resource_policy(logs_key_statement(stack, "*"))
    return key


def log_group(scope: Construct, cid: str) -> logs.LogGroup:
    """A log group kept for a month, encrypted with its stack's key."""
    return logs.LogGroup(
        scope,
        cid,
        retention=logs.RetentionDays.ONE_MONTH,
        removal_policy=RemovalPolicy.DESTROY,
        encryption_key=logs_key(scope),
    )


def container_logs(scope: Construct, cid: str, prefix: str) -> ecs.LogDriver:
    """The awslogs driver of a container, into its own log group `cid`."""
    return ecs.LogDrivers.aws_logs(stream_prefix=prefix, log_group=log_group(scope, cid))
