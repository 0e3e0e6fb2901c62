"""Policy statements of the platform's encrypted SNS topics (the alarm topic, the alert topic)."""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_iam as iam

CLOUDWATCH = "cloudwatch.amazonaws.com"


def _from_this_accounts_alarms(stack: Stack) -> dict[str, dict[str, str]]:
    return {
        "StringEquals": {"aws:SourceAccount": stack.account},
        "ArnLike": {"aws:SourceArn": f"arn:aws:cloudwatch:{stack.region}:{stack.account}:alarm:*"},
    }


def alarms_may_use_key(stack: Stack) -> iam.PolicyStatement:
    """CloudWatch publishes alarm notifications to the encrypted topic only with kms:Decrypt
    and kms:GenerateDataKey* on its key ("How do I configure a CloudWatch alarm with an
    encrypted SNS topic?", AWS re:Post knowledge center; the SNS developer guide's "Enable
    compatibility between event sources from AWS services and encrypted topics"), here only for
    this account's alarms."""
    return iam.PolicyStatement(
        sid="CloudWatchAlarms",
        principals=[iam.ServicePrincipal(CLOUDWATCH)],
        actions=["kms:Decrypt", "kms:GenerateDataKey*"],
        resources=["*"],  # in a key policy, "*" is this key
        conditions=_from_this_accounts_alarms(stack),
    )


def alarms_may_publish(stack: Stack, topic_arn: str) -> iam.PolicyStatement:
    """The topic-policy statement that lets this account's CloudWatch alarms publish (a topic
    with a policy of its own no longer has SNS's default one, which allowed the account)."""
    return iam.PolicyStatement(
        sid="CloudWatchAlarmsPublish",
        principals=[iam.ServicePrincipal(CLOUDWATCH)],
        actions=["sns:Publish"],
        resources=[topic_arn],
        conditions=_from_this_accounts_alarms(stack),
    )


def deny_insecure_transport(topic_arn: str) -> iam.PolicyStatement:
    """Publishing over plain HTTP is refused (cdk-nag AwsSolutions-SNS3)."""
    return iam.PolicyStatement(
        sid="AllowPublishThroughSSLOnly",
        effect=iam.Effect.DENY,
        principals=[iam.AnyPrincipal()],
        actions=["sns:Publish"],
        resources=[topic_arn],
        conditions={"Bool": {"aws:SecureTransport": "false"}},
    )
