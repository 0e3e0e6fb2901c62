"""Services: the metrics API and the dashboard on ECS Fargate behind one Application Load
Balancer (path routing, sticky dashboard sessions, HTTPS when a certificate is given), and the
alert evaluator beside them (signal_aws.stacks.alerts)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aws_cdk import CfnOutput, Duration, RemovalPolicy, SecretValue, Stack
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from signal_aws import checkov
from signal_aws.images import container_image, task_definition
from signal_aws.settings import DeploySettings
from signal_aws.stacks.alerts import EVALUATOR_READS, Alerts
from signal_aws.stacks.data import ATHENA_RESULTS_PREFIX, LAKE_PREFIX, DataStack
from signal_aws.stacks.logging import container_logs, log_group

API_PORT = 8080
DASHBOARD_PORT = 8501
API_PATHS = ["/v1/*", "/healthz", "/readyz", "/docs", "/openapi.json"]


def query_permissions(
    role: iam.IGrantable, data: DataStack, *, tables: Sequence[str] | None = None
) -> None:
    """What a reader of the lake through Athena needs: the workgroup, the catalog, the lake
    (read) and the workgroup's result location (read/write). With `tables`, only those tables'
    catalog entries and objects (Athena reads the objects with the caller's rights)."""
    role.grant_principal.add_to_principal_policy(
        iam.PolicyStatement(
            sid="AthenaWorkgroup",
            actions=[
                "athena:StartQueryExecution",
                "athena:GetQueryExecution",
                "athena:GetQueryResults",
                "athena:StopQueryExecution",
                "athena:GetWorkGroup",
            ],
            resources=[data.workgroup_arn],
        )
    )
    table_arns = (
        [data.glue_tables_arn] if tables is None else [data.glue_table_arn(t) for t in tables]
    )
    role.grant_principal.add_to_principal_policy(
        iam.PolicyStatement(
            sid="GlueCatalogRead",
            actions=[
                "glue:GetDatabase",
                "glue:GetTable",
                "glue:GetTables",
                "glue:GetPartition",
                "glue:GetPartitions",
            ],
            resources=[data.glue_catalog_arn, data.glue_database_arn, *table_arns],
        )
    )
    for prefix in [LAKE_PREFIX] if tables is None else [f"{LAKE_PREFIX}/{t}" for t in tables]:
        data.bucket.grant_read(role, f"{prefix}/*")
    data.bucket.grant_read_write(role, f"{ATHENA_RESULTS_PREFIX}/*")


class ServicesStack(Stack):
    """The cluster, the load balancer, the two services behind it and the alert evaluator."""

    def __init__(
        self,
        scope: Construct,
        cid: str,
        *,
        settings: DeploySettings,
        data: DataStack,
        **kw: Any,
    ) -> None:
        super().__init__(scope, cid, **kw)
        versions = settings.versions
        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            availability_zones=settings.zones,
            nat_gateways=1,
            flow_logs={
                "all": ec2.FlowLogOptions(
                    destination=ec2.FlowLogDestination.to_cloud_watch_logs(
                        log_group(self, "FlowLogs")
                    )
                )
            },
        )
        self.cluster = ecs.Cluster(
            self, "Cluster", vpc=self.vpc, container_insights_v2=ecs.ContainerInsights.ENABLED
        )
        # the dashboard calls the API inside the VPC (api.<namespace>), not through the ALB
        self.cluster.add_default_cloud_map_namespace(name=f"{settings.prefix}.internal")
        access_logs = s3.Bucket(
            self,
            "AlbLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            removal_policy=RemovalPolicy.RETAIN,
            lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(90))],
        )
        checkov.skip(access_logs, *checkov.LOG_BUCKET)
        self.alb = elbv2.ApplicationLoadBalancer(
            self, "Alb", vpc=self.vpc, internet_facing=True, drop_invalid_header_fields=True
        )
        self.alb.log_access_logs(access_logs, "alb")
        # port 80 is open to the internet with or without a certificate (then it redirects)
        checkov.skip(self.alb.connections.security_groups[0], checkov.PUBLIC_HTTP_PORT)

        # API keys: the API holds only their SHA-256 hashes; the dashboard holds its own key.
        # The secrets are encrypted with a key of this stack (reading one needs kms:Decrypt
        # through Secrets Manager, which the task roles' secret grants include)
        secrets_key = kms.Key(
            self, "SecretsKey", enable_key_rotation=True, description="Signal Stream secrets"
        )
        self.api_keys = secretsmanager.Secret(
            self,
            "ApiKeyHashes",
            encryption_key=secrets_key,
            description="Metrics API keys: {'hashes': JSON list of 'name:sha256hex'} "
            "(see deploy/README.md, 'API keys')",
            # no keys at first: every /v1 call is refused until one is added
            secret_object_value={"hashes": SecretValue.unsafe_plain_text("[]")},
        )
        self.dashboard_key = secretsmanager.Secret(
            self,
            "DashboardApiKey",
            encryption_key=secrets_key,
            description="The dashboard's key to the metrics API (its hash goes in ApiKeyHashes)",
            generate_secret_string=secretsmanager.SecretStringGenerator(
                exclude_punctuation=True, password_length=40
            ),
        )
        cookie_secret = secretsmanager.Secret(
            self,
            "DashboardCookieSecret",
            encryption_key=secrets_key,
            description="Streamlit cookie secret shared by the dashboard's replicas",
            generate_secret_string=secretsmanager.SecretStringGenerator(
                exclude_punctuation=True, password_length=48
            ),
        )

        # the metrics API's engine and lake, the same for the API and the alert evaluator
        engine_environment = {
            "SIGNAL_API_ENGINE": "athena",
            "SIGNAL_API_AWS_REGION": self.region,
            "SIGNAL_API_GLUE_DATABASE": settings.glue_database,
            "SIGNAL_API_LAKE_ROOT": data.lake_uri,
            "SIGNAL_API_ATHENA_WORKGROUP": data.workgroup.name or settings.prefix,
            "SIGNAL_API_ATHENA_OUTPUT_LOCATION": (
                f"s3://{data.bucket.bucket_name}/{ATHENA_RESULTS_PREFIX}/"
            ),
        }
        api_task = self._task("Api", "metrics-api", settings, versions["metrics-api"])
        query_permissions(api_task.task_role, data)
        api_task.add_container(
            "api",
            image=container_image(settings, "metrics-api"),
            port_mappings=[ecs.PortMapping(container_port=API_PORT)],
            logging=container_logs(self, "metrics-api-logs", "metrics-api"),
            environment={
                **engine_environment,
                "SIGNAL_API_HOST": "0.0.0.0",
                "SIGNAL_API_PORT": str(API_PORT),
                "SIGNAL_API_CACHE_TTL_S": str(settings.trigger_seconds),
                # the ALB appends the address it saw to X-Forwarded-For (failed-auth throttling)
                "SIGNAL_API_TRUSTED_PROXY_HOPS": "1",
            },
            secrets={
                "SIGNAL_API_API_KEYS_SHA256": ecs.Secret.from_secrets_manager(
                    self.api_keys, "hashes"
                )
            },
        )
        self.api = self._service("ApiService", api_task, settings.api_tasks, cloud_map="api")

        dashboard_task = self._task("Dashboard", "dashboard", settings, versions["dashboard"])
        dashboard_task.add_container(
            "dashboard",
            image=container_image(settings, "dashboard"),
            port_mappings=[ecs.PortMapping(container_port=DASHBOARD_PORT)],
            logging=container_logs(self, "dashboard-logs", "dashboard"),
            environment={
                "SIGNAL_DASHBOARD_HOST": "0.0.0.0",
                "SIGNAL_DASHBOARD_PORT": str(DASHBOARD_PORT),
                "SIGNAL_DASHBOARD_API_URL": f"http://api.{settings.prefix}.internal:{API_PORT}",
                "SIGNAL_DASHBOARD_REFRESH_S": str(settings.trigger_seconds),
            },
            secrets={
                "SIGNAL_DASHBOARD_API_KEY": ecs.Secret.from_secrets_manager(self.dashboard_key),
                "SIGNAL_DASHBOARD_COOKIE_SECRET": ecs.Secret.from_secrets_manager(cookie_secret),
            },
        )
        self.dashboard = self._service("DashboardService", dashboard_task, settings.dashboard_tasks)
        self.api.connections.allow_from(self.dashboard, ec2.Port.tcp(API_PORT), "dashboard to API")

        listener = self._listener(settings)
        self.api_targets = listener.add_targets(
            "ApiTargets",
            port=API_PORT,
            protocol=elbv2.ApplicationProtocol.HTTP,
            targets=[self.api],
            priority=10,
            conditions=[elbv2.ListenerCondition.path_patterns(API_PATHS)],
            health_check=elbv2.HealthCheck(path="/healthz", healthy_http_codes="200"),
            deregistration_delay=Duration.seconds(30),
        )
        self.dashboard_targets = listener.add_targets(
            "DashboardTargets",
            port=DASHBOARD_PORT,
            protocol=elbv2.ApplicationProtocol.HTTP,
            targets=[self.dashboard],
            health_check=elbv2.HealthCheck(path="/_stcore/health", healthy_http_codes="200"),
            # Streamlit keeps a session per browser on one server: replicas need stickiness
            stickiness_cookie_duration=Duration.hours(8),
            deregistration_delay=Duration.seconds(30),
        )
        # the alert evaluator (#25): the API's image, one task, no load balancer
        evaluator_task = self._task(
            "AlertEvaluator", "alert-evaluator", settings, versions["metrics-api"]
        )
        query_permissions(evaluator_task.task_role, data, tables=EVALUATOR_READS)
        scheme = "https" if settings.certificate_arn else "http"
        self.alerts = Alerts(
            self,
            "Alerts",
            settings=settings,
            data=data,
            engine_environment=engine_environment,
            cluster=self.cluster,
            task=evaluator_task,
            image=container_image(settings, "metrics-api"),
            logging=container_logs(self, "alert-evaluator-logs", "alert-evaluator"),
            # Alertmanager-style links to an area's map view start at the dashboard
            dashboard_url=f"{scheme}://{self.alb.load_balancer_dns_name}",
        )
        CfnOutput(self, "AlertTopicArn", value=self.alerts.topic.topic_arn)

        CfnOutput(self, "AlbDnsName", value=self.alb.load_balancer_dns_name)
        CfnOutput(self, "ClusterName", value=self.cluster.cluster_name)
        # where on-demand tasks (the producer) run: `aws ecs run-task --network-configuration`
        CfnOutput(
            self,
            "PrivateSubnets",
            value=",".join(subnet.subnet_id for subnet in self.vpc.private_subnets),
        )
        CfnOutput(self, "ApiKeyHashesSecret", value=self.api_keys.secret_arn)
        CfnOutput(self, "DashboardApiKeySecret", value=self.dashboard_key.secret_arn)
        for service, targets, low, high in (
            (self.api, self.api_targets, settings.api_tasks, settings.api_max_tasks),
            (
                self.dashboard,
                self.dashboard_targets,
                settings.dashboard_tasks,
                settings.dashboard_max_tasks,
            ),
        ):
            scaling = service.auto_scale_task_count(min_capacity=low, max_capacity=high)
            scaling.scale_on_cpu_utilization("Cpu", target_utilization_percent=60)
            scaling.scale_on_request_count(
                "Requests", requests_per_target=600, target_group=targets
            )

    def _task(
        self, cid: str, service: str, settings: DeploySettings, version: str
    ) -> ecs.FargateTaskDefinition:
        task = task_definition(
            self,
            f"{cid}Task",
            cpu=512,
            memory_limit_mib=1024,
            family=f"{settings.prefix}-{service}",
        )
        task.node.default_child.add_property_override(  # type: ignore[union-attr]
            "Tags", [{"Key": "version", "Value": version}, {"Key": "service", "Value": service}]
        )
        return task

    def _service(
        self,
        cid: str,
        task: ecs.FargateTaskDefinition,
        count: int,
        *,
        cloud_map: str | None = None,
    ) -> ecs.FargateService:
        return ecs.FargateService(
            self,
            cid,
            cluster=self.cluster,
            task_definition=task,
            desired_count=count,
            cloud_map_options=ecs.CloudMapOptions(name=cloud_map) if cloud_map else None,
            circuit_breaker=ecs.DeploymentCircuitBreaker(rollback=True),
            min_healthy_percent=100,
            enable_execute_command=False,
        )

    def _listener(self, settings: DeploySettings) -> elbv2.ApplicationListener:
        if settings.certificate_arn:
            self.alb.add_redirect()  # HTTP 80 -> HTTPS 443
            return self.alb.add_listener(
                "Https",
                port=443,
                certificates=[
                    acm.Certificate.from_certificate_arn(self, "Cert", settings.certificate_arn)
                ],
                ssl_policy=elbv2.SslPolicy.RECOMMENDED_TLS,
            )
        listener = self.alb.add_listener("Http", port=80)
        checkov.skip(listener, *checkov.HTTP_LISTENER)
        return listener
