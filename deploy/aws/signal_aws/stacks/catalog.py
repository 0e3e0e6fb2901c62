"""Catalog: the catalog manager keeps the Glue Data Catalog true to the lake, as a scheduled
Fargate task (`signal-catalog sync`) and, in `register` mode, as a Lambda that registers each
new partition when its first object lands (S3 → EventBridge → Lambda). A second scheduled task
(`signal-catalog compact`) folds each closed hour partition into one file: it alone may write
and delete lake objects, and only under the lake prefix."""

from __future__ import annotations

from typing import Any

from aws_cdk import Duration, Stack
from aws_cdk import aws_applicationautoscaling as appscaling
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_ecs_patterns as ecs_patterns
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from signal_aws import checkov
from signal_aws.images import container_image, image_context, task_definition
from signal_aws.settings import DeploySettings
from signal_aws.stacks.data import LAKE_PREFIX, DataStack
from signal_aws.stacks.logging import container_logs, log_group
from signal_aws.stacks.services import ServicesStack, query_permissions

CATALOG_WRITE_ACTIONS = [
    "glue:GetDatabase",
    "glue:CreateDatabase",
    "glue:GetTable",
    "glue:GetTables",
    "glue:CreateTable",
    "glue:UpdateTable",
    "glue:GetPartition",
    "glue:GetPartitions",
    "glue:BatchCreatePartition",
    "glue:BatchGetPartition",
    "glue:CreatePartition",
    "glue:UpdatePartition",
]
CRAWLER_ACTIONS = [
    "glue:GetCrawler",
    "glue:GetCrawlers",
    "glue:CreateCrawler",
    "glue:UpdateCrawler",
    "glue:StartCrawler",
    "glue:ListCrawls",
]


def catalog_environment(settings: DeploySettings, data: DataStack) -> dict[str, str]:
    """The catalog manager's settings in this deployment."""
    return {
        "SIGNAL_CATALOG_AWS_REGION": data.region,
        "SIGNAL_CATALOG_GLUE_DATABASE": settings.glue_database,
        "SIGNAL_CATALOG_LAKE_ROOT": data.lake_uri,
        "SIGNAL_CATALOG_PARTITION_MODE": settings.catalog_mode,
        "SIGNAL_CATALOG_QUERY_ENGINE": "athena",
        "SIGNAL_CATALOG_ATHENA_WORKGROUP": data.workgroup.name or settings.prefix,
    }


class CatalogStack(Stack):
    """The scheduled sync task and the partition-registration Lambda."""

    def __init__(
        self,
        scope: Construct,
        cid: str,
        *,
        settings: DeploySettings,
        data: DataStack,
        services: ServicesStack,
        **kw: Any,
    ) -> None:
        super().__init__(scope, cid, **kw)
        version = settings.versions["catalog-manager"]
        catalog_resources = [data.glue_catalog_arn, data.glue_database_arn, data.glue_tables_arn]
        catalog_resources.append(
            f"arn:aws:glue:{self.region}:{self.account}:userDefinedFunction/"
            f"{settings.glue_database}/*"
        )
        environment = catalog_environment(settings, data)
        self.crawler_role: iam.Role | None = None
        if settings.crawlers:
            # the seed's crawlers (`signal-catalog crawlers create`), behind a flag
            self.crawler_role = iam.Role(
                self,
                "CrawlerRole",
                assumed_by=iam.ServicePrincipal("glue.amazonaws.com"),
                description="Glue crawlers of the lake tables",
            )
            data.bucket.grant_read(self.crawler_role, f"{LAKE_PREFIX}/*")
            self.crawler_role.add_to_policy(
                iam.PolicyStatement(
                    sid="CrawlerCatalog", actions=CATALOG_WRITE_ACTIONS, resources=catalog_resources
                )
            )
            self.crawler_role.add_to_policy(
                iam.PolicyStatement(
                    sid="CrawlerLogs",
                    actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
                    resources=[
                        f"arn:aws:logs:{self.region}:{self.account}:log-group:/aws-glue/crawlers*"
                    ],
                )
            )
            environment["SIGNAL_CATALOG_CRAWLER_ROLE"] = self.crawler_role.role_arn
            environment["SIGNAL_CATALOG_CRAWLER_PREFIX"] = f"{settings.prefix}-"

        task = task_definition(
            self, "SyncTask", cpu=256, memory_limit_mib=512, family=f"{settings.prefix}-catalog"
        )
        task.add_container(
            "catalog",
            image=container_image(settings, "catalog-manager"),
            command=["sync"],
            environment=environment,
            logging=container_logs(self, "SyncLogs", "catalog-manager"),
        )
        self._grant(task.task_role, data, catalog_resources, settings)
        self.sync = self._scheduled("ScheduledSync", task, services, settings.catalog_sync_minutes)

        self.compaction = self._compaction_task(settings, data, services, environment)

        self.register: lambda_.DockerImageFunction | None = None
        if settings.catalog_mode == "register":
            self.register = lambda_.DockerImageFunction(
                self,
                "RegisterPartitions",
                description=f"signal-catalog {version}: register partitions as objects land",
                code=lambda_.DockerImageCode.from_image_asset(
                    str(image_context(settings, "catalog-manager-lambda")),
                    platform=ecr_assets.Platform.LINUX_AMD64,
                ),
                architecture=lambda_.Architecture.X86_64,  # the image's pex is x86_64
                timeout=Duration.seconds(60),
                memory_size=512,
                environment=environment,
                # none by default: see the setting (a new account refuses any reservation)
                reserved_concurrent_executions=settings.catalog_lambda_reserved_concurrency,
                log_group=log_group(self, "RegisterLogs"),
            )
            checkov.skip(self.register, *checkov.REGISTER_FUNCTION)
            self._grant(self.register, data, catalog_resources, settings)
            events.Rule(
                self,
                "ObjectCreated",
                description="New lake objects: register their partitions",
                event_pattern=events.EventPattern(
                    source=["aws.s3"],
                    detail_type=["Object Created"],
                    detail={
                        "bucket": {"name": [data.bucket.bucket_name]},
                        "object": {"key": [{"prefix": f"{LAKE_PREFIX}/"}]},
                    },
                ),
                targets=[targets.LambdaFunction(self.register, retry_attempts=4)],
            )

    def _compaction_task(
        self,
        settings: DeploySettings,
        data: DataStack,
        services: ServicesStack,
        environment: dict[str, str],
    ) -> ecs_patterns.ScheduledFargateTask:
        """`signal-catalog compact` on a schedule: reads, writes and deletes lake objects."""
        task = task_definition(
            self,
            "CompactTask",
            cpu=1024,
            memory_limit_mib=4096,  # a closed hour of `events` is held in memory while merged
            family=f"{settings.prefix}-compaction",
        )
        task.add_container(
            "compaction",
            image=container_image(settings, "catalog-manager"),
            command=["compact"],
            environment={
                **environment,
                "SIGNAL_CATALOG_COMPACT_GRACE_S": str(settings.compaction_grace_s),
                "SIGNAL_CATALOG_COMPACT_READER_GRACE_S": str(settings.compaction_reader_grace_s),
            },
            logging=container_logs(self, "CompactLogs", "compaction"),
        )
        data.bucket.grant_read_write(task.task_role, f"{LAKE_PREFIX}/*")
        data.bucket.grant_delete(task.task_role, f"{LAKE_PREFIX}/*")
        return self._scheduled("ScheduledCompaction", task, services, settings.compaction_minutes)

    def _scheduled(
        self,
        cid: str,
        task: ecs.FargateTaskDefinition,
        services: ServicesStack,
        minutes: int,
    ) -> ecs_patterns.ScheduledFargateTask:
        """Run `task` on the services' cluster every `minutes`."""
        return ecs_patterns.ScheduledFargateTask(
            self,
            cid,
            cluster=services.cluster,
            scheduled_fargate_task_definition_options=(
                ecs_patterns.ScheduledFargateTaskDefinitionOptions(task_definition=task)
            ),
            schedule=appscaling.Schedule.rate(Duration.minutes(minutes)),
        )

    def _grant(
        self,
        grantee: iam.IGrantable,
        data: DataStack,
        catalog_resources: list[str],
        settings: DeploySettings,
    ) -> None:
        actions = list(CATALOG_WRITE_ACTIONS)
        if settings.crawlers:
            actions += CRAWLER_ACTIONS
            catalog_resources = [
                *catalog_resources,
                f"arn:aws:glue:{self.region}:{self.account}:crawler/{settings.prefix}-*",
            ]
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(sid="CatalogWrite", actions=actions, resources=catalog_resources)
        )
        if self.crawler_role is not None:
            self.crawler_role.grant_pass_role(grantee.grant_principal)
        query_permissions(grantee, data)  # `validate` runs a smoke query through Athena
