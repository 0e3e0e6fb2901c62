"""Alerts (#25): the alert evaluator, `signal-api alerts evaluate --every 60` from the metrics
API's image as one ECS service without a load balancer, and the SNS topic it notifies,
encrypted with a key of its own that CloudWatch and the evaluator may use."""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subs
from constructs import Construct

from signal_aws.settings import DeploySettings
from signal_aws.stacks.data import LAKE_PREFIX, DataStack
from signal_aws.stacks.topics import alarms_may_publish, alarms_may_use_key, deny_insecure_transport

EVALUATOR_EVERY_S = 60
EVALUATOR_COMMAND = ["alerts", "evaluate", "--every", str(EVALUATOR_EVERY_S)]
# The evaluator's /metrics (signal_api.wiring.serve_evaluator_metrics), on loopback:
# only the health check below reads it, from inside the container.
EVALUATOR_METRICS_PORT = 9464
# The container's health check: the metrics API's pex (the Dockerfile's COPY and ENTRYPOINT;
# the image has no curl) asks the running evaluator's /metrics for its last successful cycle.
# Unhealthy past three cycles without a success: the process may be up while every cycle fails
# (a denied lake raises lake_unreadable each minute) or hangs. ECS then replaces the task.
# ECS ignores the image's own HEALTHCHECK (the API's /healthz on 8080, which the evaluator
# does not serve): "Amazon ECS doesn't monitor Docker health checks that are embedded in a
# container image and not specified in the container definition" (HealthCheck, Amazon ECS API
# Reference, https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_HealthCheck.html).
EVALUATOR_MAX_CYCLE_AGE_S = 3 * EVALUATOR_EVERY_S
EVALUATOR_HEALTH_COMMAND = [
    "CMD",
    "/app/signal-api.pex",
    "alerts",
    "healthcheck",
    "--max-age",
    str(EVALUATOR_MAX_CYCLE_AGE_S),
]
# The lake tables the evaluator's Athena queries read (signal_api.alerts.queries) and the one it
# writes itself, one Parquet file per cycle (signal_api.alerts.store.S3AlertStore);
# tests/test_alerts.py checks both against those modules.
EVALUATOR_READS = ("events", "coverage_by_postal_code")
ALERT_EVENTS = "alert_events"
# Delivery's state (sent keys per destination: dedup across restarts; leases; dead letters),
# outside the lake: not a table, never compacted or catalogued.
DELIVERY_STATE_PREFIX = "alert-delivery"


def key_users_statement(sid: str, principal: iam.IPrincipal) -> iam.PolicyStatement:
    """A key-policy statement: `principal` may encrypt for (and read from) the topic."""
    return iam.PolicyStatement(
        sid=sid,
        principals=[principal],
        actions=["kms:Decrypt", "kms:GenerateDataKey*"],
        resources=["*"],  # in a key policy, "*" is this key
    )


def delivery_environment(
    settings: DeploySettings, data: DataStack, *, topic_arn: str, dashboard_url: str
) -> dict[str, str]:
    """Delivery's settings (SIGNAL_ALERTS_): where the evaluator notifies and keeps its state."""
    region = Stack.of(data).region
    return {
        # delivery's clients (SNS, the S3 state) take their own region setting: its default,
        # us-east-1, would publish to a topic that is not there
        "SIGNAL_ALERTS_AWS_REGION": region,
        "SIGNAL_ALERTS_SNS_TOPIC_ARN": topic_arn,
        # A Fargate task's disk goes with the task, so SIGNAL_ALERTS_STATE_DIR would forget the
        # sent keys at every restart or deploy and the next cycles (which hand the horizon's
        # transitions again) would notify twice. The state lives in S3 instead (delivery.py's
        # S3DeliveryState, which replaces the state dir when this is set).
        "SIGNAL_ALERTS_STATE_S3_URI": f"s3://{data.bucket.bucket_name}/{DELIVERY_STATE_PREFIX}",
        "SIGNAL_ALERTS_DASHBOARD_URL": dashboard_url,
        # its /metrics on 127.0.0.1 (the default host), for the container's health check
        "SIGNAL_ALERTS_METRICS_PORT": str(EVALUATOR_METRICS_PORT),
    }


class Alerts(Construct):
    """The evaluator's service and task role grants, the alert topic and its key, and an alarm
    when no evaluator runs."""

    def __init__(
        self,
        scope: Construct,
        cid: str,
        *,
        settings: DeploySettings,
        data: DataStack,
        engine_environment: dict[str, str],
        cluster: ecs.ICluster,
        task: ecs.FargateTaskDefinition,
        image: ecs.ContainerImage,
        logging: ecs.LogDriver,
        dashboard_url: str,
    ) -> None:
        super().__init__(scope, cid)
        stack = Stack.of(self)
        role = task.task_role

        self.key = kms.Key(
            self, "TopicKey", enable_key_rotation=True, description="Signal Stream alert topic"
        )
        self.key.add_to_resource_policy(alarms_may_use_key(stack))
        self.key.add_to_resource_policy(key_users_statement("AlertEvaluator", role))
        self.topic = sns.Topic(
            self, "Topic", display_name="Signal Stream alerts", master_key=self.key
        )
        self.topic.add_to_resource_policy(deny_insecure_transport(self.topic.topic_arn))
        self.topic.add_to_resource_policy(alarms_may_publish(stack, self.topic.topic_arn))
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AlertEvaluatorPublish",
                principals=[role],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
            )
        )
        self.topic.grant_publish(role)
        if settings.alert_email:
            self.topic.add_subscription(subs.EmailSubscription(settings.alert_email))

        self._grant(role, data)
        self.container = task.add_container(
            "alert-evaluator",
            image=image,
            command=EVALUATOR_COMMAND,
            logging=logging,
            # the API's engine settings (SIGNAL_API_), then delivery's
            environment={
                **engine_environment,
                **delivery_environment(
                    settings, data, topic_arn=self.topic.topic_arn, dashboard_url=dashboard_url
                ),
            },
            health_check=ecs.HealthCheck(
                command=EVALUATOR_HEALTH_COMMAND,
                interval=Duration.seconds(30),
                # the pex's start (imports of the API's modules) plus one local HTTP GET
                timeout=Duration.seconds(15),
                retries=3,
                # the first cycle (Athena over the 24 h baseline) before failures count
                start_period=Duration.seconds(180),
            ),
        )
        # Exactly one evaluator per deployment: it notifies, and two would race on the
        # delivery state and page twice. No autoscaling; a deploy stops the old task before
        # it starts the new one (0 %..100 %), so one cycle may be skipped, never doubled (the
        # next cycle re-evaluates the skipped windows: they are inside its horizon).
        self.service = ecs.FargateService(
            self,
            "Service",
            cluster=cluster,
            task_definition=task,
            desired_count=1,
            min_healthy_percent=0,
            max_healthy_percent=100,
            circuit_breaker=ecs.DeploymentCircuitBreaker(rollback=True),
            enable_execute_command=False,
        )
        self.not_running = cw.Alarm(
            self,
            "EvaluatorNotRunning",
            alarm_description="No alert evaluator task runs: nobody is told of coverage "
            "alerts (Container Insights RunningTaskCount below 1 for 5 minutes).",
            metric=cw.Metric(
                namespace="ECS/ContainerInsights",
                metric_name="RunningTaskCount",
                dimensions_map={
                    "ClusterName": cluster.cluster_name,
                    "ServiceName": self.service.service_name,
                },
                statistic="Minimum",
                period=Duration.minutes(1),
            ),
            threshold=1,
            comparison_operator=cw.ComparisonOperator.LESS_THAN_THRESHOLD,
            evaluation_periods=5,
            # Container Insights publishes the count (0 too) while the service exists
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
        )
        self.not_running.add_alarm_action(cw_actions.SnsAction(self.topic))
        self.not_running.add_ok_action(cw_actions.SnsAction(self.topic))

    @staticmethod
    def _grant(role: iam.IRole, data: DataStack) -> None:
        """Its own table (read and write, never delete) and its delivery state; its Athena
        reads are the services stack's query_permissions over EVALUATOR_READS."""
        for prefix in (f"{LAKE_PREFIX}/{ALERT_EVENTS}", DELIVERY_STATE_PREFIX):
            data.bucket.grant_read(role, f"{prefix}/*")
            data.bucket.grant_put(role, f"{prefix}/*")
