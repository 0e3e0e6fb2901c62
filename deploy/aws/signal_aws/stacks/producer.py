"""Producer: a Fargate task definition for the producer, run on demand (`aws ecs run-task`,
command overridable), generating telemetry into the stream."""

from __future__ import annotations

from typing import Any

from aws_cdk import Stack
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from constructs import Construct

from signal_aws.images import image_context
from signal_aws.settings import DeploySettings
from signal_aws.stacks.data import DataStack
from signal_aws.stacks.logging import container_logs


class ProducerStack(Stack):
    """The producer's task definition and its least-privilege role."""

    def __init__(
        self, scope: Construct, cid: str, *, settings: DeploySettings, data: DataStack, **kw: Any
    ) -> None:
        super().__init__(scope, cid, **kw)
        version = settings.versions["producer"]
        self.task = ecs.FargateTaskDefinition(
            self, "Task", cpu=512, memory_limit_mib=1024, family=f"{settings.prefix}-producer"
        )
        self.task.add_container(
            "producer",
            image=ecs.ContainerImage.from_asset(str(image_context(settings, "producer"))),
            command=["generate", "--events", "100000", "--rate", "200", "--no-progress"],
            environment={
                "SIGNAL_PRODUCER_STREAM_NAME": settings.stream_name,
                "SIGNAL_PRODUCER_AWS_REGION": self.region,
                "SIGNAL_PRODUCER_DEAD_LETTER_PATH": "/tmp/dead-letter.jsonl",
                "SIGNAL_PRODUCER_VERSION": version,
            },
            logging=container_logs(self, "Logs", "producer"),
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
