"""CloudWatch log groups of the platform's containers and functions: one month, removed with
their stack (the data lives in the lake, not in the logs)."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_logs as logs
from constructs import Construct


def log_group(scope: Construct, cid: str) -> logs.LogGroup:
    """A log group kept for a month."""
    return logs.LogGroup(
        scope, cid, retention=logs.RetentionDays.ONE_MONTH, removal_policy=RemovalPolicy.DESTROY
    )


def container_logs(scope: Construct, cid: str, prefix: str) -> ecs.LogDriver:
    """The awslogs driver of a container, into its own log group `cid`."""
    return ecs.LogDrivers.aws_logs(stream_prefix=prefix, log_group=log_group(scope, cid))
