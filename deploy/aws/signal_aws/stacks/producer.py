"""Producer: a Fargate task definition for the producer, run on demand (`aws ecs run-task`,
command overridable): it generates telemetry into the stream, or replays a mobile_logs.csv (the
sample baked into the image, or a file uploaded under the bucket's inputs/ prefix). Records
Kinesis never accepts go to the bucket's dead-letters/producer/ prefix, one object per run."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from constructs import Construct

from signal_aws.images import container_image, task_definition
from signal_aws.settings import DeploySettings
from signal_aws.stacks.data import DEAD_LETTERS_PREFIX, INPUTS_PREFIX, DataStack
from signal_aws.stacks.logging import log_group


class ProducerStack(Stack):
    """The producer's task definition and its least-privilege role."""

    def __init__(
        self, scope: Construct, cid: str, *, settings: DeploySettings, data: DataStack, **kw: Any
    ) -> None:
        super().__init__(scope, cid, **kw)
        version = settings.versions["producer"]
        dead_letters = f"{DEAD_LETTERS_PREFIX}/producer"
        dead_letters_url = f"s3://{data.bucket.bucket_name}/{dead_letters}/"
        logs = log_group(self, "Logs")
        self.task = task_definition(
            self, "Task", cpu=512, memory_limit_mib=1024, family=f"{settings.prefix}-producer"
        )
        # the version is a tag of the task definition (as in the Services stack) and in the
        # image tag; no setting reads it, so it is not in the container's environment
        self.task.node.default_child.add_property_override(  # type: ignore[union-attr]
            "Tags", [{"Key": "version", "Value": version}, {"Key": "service", "Value": "producer"}]
        )
        self.task.add_container(
            "producer",
            image=container_image(settings, "producer"),
            command=["generate", "--events", "100000", "--rate", "200", "--no-progress"],
            environment={
                "SIGNAL_PRODUCER_STREAM_NAME": settings.stream_name,
                "SIGNAL_PRODUCER_AWS_REGION": self.region,
                # spooled in the task's /tmp, uploaded when the run ends (only if any)
                "SIGNAL_PRODUCER_DEAD_LETTER_PATH": dead_letters_url,
            },
            logging=ecs.LogDrivers.aws_logs(stream_prefix="producer", log_group=logs),
        )
        role = self.task.task_role
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="PutRecords",
                actions=[
                    "kinesis:PutRecords",
                    "kinesis:PutRecord",
                    "kinesis:DescribeStreamSummary",
                ],
                resources=[data.stream.stream_arn],
            )
        )
        # replay reads an uploaded CSV as a stream. No s3:ListBucket: without it S3 answers
        # 403 for a missing key too, and the producer's message names both causes
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="ReadReplayInputs",
                actions=["s3:GetObject"],
                resources=[data.bucket.arn_for_objects(f"{INPUTS_PREFIX}/*")],
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="WriteDeadLetters",
                actions=["s3:PutObject"],
                resources=[data.bucket.arn_for_objects(f"{dead_letters}/*")],
            )
        )
        CfnOutput(
            self,
            "DeadLetters",
            value=dead_letters_url,
            description="Records a producer run could not put into the stream, one object each.",
        )
        CfnOutput(
            self,
            "ReplayInputs",
            value=f"s3://{data.bucket.bucket_name}/{INPUTS_PREFIX}/",
            description="Upload a mobile_logs.csv here; the task replays s3://…/inputs/<file>.",
        )
        CfnOutput(self, "TaskDefinitionFamily", value=self.task.family)
        CfnOutput(self, "LogGroup", value=logs.log_group_name)
