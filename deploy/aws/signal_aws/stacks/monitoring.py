"""Monitoring: alarms on the stream and the processor, an SNS topic for them, one dashboard."""

from __future__ import annotations

from typing import Any

from aws_cdk import Duration, Stack
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subs
from constructs import Construct

from signal_aws.settings import DeploySettings
from signal_aws.stacks.data import DataStack
from signal_aws.stacks.processing import METRICS_NAMESPACE, ProcessingStack
from signal_aws.stacks.services import ServicesStack


class MonitoringStack(Stack):
    """Alarms (to one SNS topic) and the operations dashboard."""

    def __init__(
        self,
        scope: Construct,
        cid: str,
        *,
        settings: DeploySettings,
        data: DataStack,
        processing: ProcessingStack,
        services: ServicesStack,
        **kw: Any,
    ) -> None:
        super().__init__(scope, cid, **kw)
        key = kms.Key(self, "TopicKey", enable_key_rotation=True, description="alarm topic")
        self.topic = sns.Topic(self, "Alarms", display_name="Signal Stream alarms", master_key=key)
        self.topic.add_to_resource_policy(_deny_insecure_transport(self.topic.topic_arn))
        if settings.alarm_email:
            self.topic.add_subscription(subs.EmailSubscription(settings.alarm_email))
        action = cw_actions.SnsAction(self.topic)
        window = Duration.minutes(1)
        trigger_ms = settings.trigger_seconds * 1000

        iterator_age = data.stream.metric_get_records_iterator_age_milliseconds(
            statistic="Maximum", period=window
        )
        consumer_lag = cw.Metric(
            namespace=METRICS_NAMESPACE,
            metric_name="MillisBehindLatest",
            dimensions_map={"Stream": settings.stream_name},
            statistic="Maximum",
            period=window,
        )
        self.alarms = [
            cw.Alarm(
                self,
                "StreamIteratorAge",
                alarm_description="Kinesis records wait: a reader lags (5 trigger intervals).",
                metric=iterator_age,
                threshold=5 * trigger_ms,
                evaluation_periods=5,
                treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            ),
            cw.Alarm(
                self,
                "ProcessorConsumerLag",
                alarm_description="The stream processor is behind the stream (5 triggers).",
                metric=consumer_lag,
                threshold=5 * trigger_ms,
                evaluation_periods=5,
                # a streaming job that publishes nothing is stopped: that is an alarm too
                treat_missing_data=cw.TreatMissingData.BREACHING,
            ),
        ]
        five_minutes = Duration.minutes(5)
        alb_5xx = services.alb.metrics.http_code_elb(
            elbv2.HttpCodeElb.ELB_5XX_COUNT, period=five_minutes, statistic="Sum"
        )
        targets_5xx = services.api_targets.metrics.http_code_target(
            elbv2.HttpCodeTarget.TARGET_5XX_COUNT, period=five_minutes, statistic="Sum"
        )
        api_p99 = services.api_targets.metrics.target_response_time(
            period=five_minutes, statistic="p99"
        )
        alb_latency = services.alb.metrics.target_response_time(
            period=five_minutes, statistic="Average"
        )
        dashboard_unhealthy = services.dashboard_targets.metrics.unhealthy_host_count(
            period=window, statistic="Maximum"
        )
        self.alarms += [
            cw.Alarm(
                self,
                "Alb5xx",
                alarm_description="The load balancer answered 5xx (no healthy target, timeouts).",
                metric=alb_5xx,
                threshold=10,
                evaluation_periods=1,
                treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            ),
            cw.Alarm(
                self,
                "Api5xx",
                alarm_description="The metrics API answered 5xx (engine unavailable or failing).",
                metric=targets_5xx,
                threshold=10,
                evaluation_periods=1,
                treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            ),
            cw.Alarm(
                self,
                "ApiP99",
                alarm_description="Metrics API p99 latency above 2 s for 15 minutes.",
                metric=api_p99,
                threshold=2.0,
                evaluation_periods=3,
                treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            ),
            cw.Alarm(
                self,
                "TargetResponseTime",
                alarm_description="Average target response time above 1 s for 15 minutes.",
                metric=alb_latency,
                threshold=1.0,
                evaluation_periods=3,
                treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            ),
            cw.Alarm(
                self,
                "DashboardUnhealthyHosts",
                alarm_description="A dashboard task fails its /_stcore/health check.",
                metric=dashboard_unhealthy,
                threshold=1,
                comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                evaluation_periods=3,
                treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            ),
        ]
        for alarm in self.alarms:
            alarm.add_alarm_action(action)
            alarm.add_ok_action(action)

        self.job_failed = events.Rule(
            self,
            "ProcessorJobFailed",
            description="The stream processor's Glue job failed, stopped or timed out.",
            event_pattern=events.EventPattern(
                source=["aws.glue"],
                detail_type=["Glue Job State Change"],
                detail={
                    "jobName": [processing.job_name],
                    "state": ["FAILED", "TIMEOUT", "STOPPED", "ERROR"],
                },
            ),
            targets=[targets.SnsTopic(self.topic)],
        )
        self.dashboard = cw.Dashboard(
            self,
            "Dashboard",
            dashboard_name=f"{settings.prefix}-operations",
            widgets=[
                [
                    cw.GraphWidget(title="Kinesis iterator age (ms)", left=[iterator_age]),
                    cw.GraphWidget(title="Processor consumer lag (ms)", left=[consumer_lag]),
                    cw.GraphWidget(
                        title="Records in",
                        left=[data.stream.metric_incoming_records(period=window)],
                    ),
                ],
                [
                    cw.GraphWidget(title="API p99 (s)", left=[api_p99]),
                    cw.GraphWidget(title="5xx", left=[alb_5xx, targets_5xx]),
                    cw.GraphWidget(title="Dashboard unhealthy hosts", left=[dashboard_unhealthy]),
                ],
            ],
        )


def _deny_insecure_transport(topic_arn: str) -> Any:
    from aws_cdk import aws_iam as iam

    return iam.PolicyStatement(
        sid="AllowPublishThroughSSLOnly",
        effect=iam.Effect.DENY,
        principals=[iam.AnyPrincipal()],
        actions=["sns:Publish"],
        resources=[topic_arn],
        conditions={"Bool": {"aws:SecureTransport": "false"}},
    )
