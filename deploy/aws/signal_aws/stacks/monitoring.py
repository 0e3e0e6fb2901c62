"""Monitoring: alarms on the stream and the processor, an SNS topic for them, one dashboard."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Duration, Stack
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
from signal_aws.stacks.topics import alarms_may_use_key, deny_insecure_transport


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
        key.add_to_resource_policy(alarms_may_use_key(self))
        self.topic = sns.Topic(self, "Alarms", display_name="Signal Stream alarms", master_key=key)
        self.topic.add_to_resource_policy(deny_insecure_transport(self.topic.topic_arn))
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

        def alarm(
            cid: str,
            description: str,
            metric: cw.IMetric,
            threshold: float,
            periods: int,
        ) -> cw.Alarm:
            """An alarm at or above `threshold` for `periods` periods of its metric. Missing
            data is never an alarm: a fresh deploy, a quiet stream (Spark runs no batch, the
            processor publishes no lag) and an idle load balancer publish nothing; a stopped
            job is the ProcessorJobFailed rule's to report."""
            return cw.Alarm(
                self,
                cid,
                alarm_description=description,
                metric=metric,
                threshold=threshold,
                evaluation_periods=periods,
                treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            )

        lag_ms = 5 * trigger_ms
        self.alarms = [
            alarm(
                "StreamIteratorAge",
                "Kinesis records wait: a reader lags (5 trigger intervals).",
                iterator_age,
                lag_ms,
                5,
            ),
            alarm(
                "ProcessorConsumerLag",
                "The stream processor is behind the stream (5 triggers).",
                consumer_lag,
                lag_ms,
                5,
            ),
            alarm(
                "Alb5xx",
                "The load balancer answered 5xx (no healthy target, timeouts).",
                alb_5xx,
                10,
                1,
            ),
            alarm(
                "Api5xx",
                "The metrics API answered 5xx (engine unavailable or failing).",
                targets_5xx,
                10,
                1,
            ),
            alarm("ApiP99", "Metrics API p99 latency above 2 s for 15 minutes.", api_p99, 2.0, 3),
            alarm(
                "TargetResponseTime",
                "Average target response time above 1 s for 15 minutes.",
                alb_latency,
                1.0,
                3,
            ),
            alarm(
                "DashboardUnhealthyHosts",
                "A dashboard task fails its /_stcore/health check.",
                dashboard_unhealthy,
                1,
                3,
            ),
        ]
        for each in self.alarms:
            each.add_alarm_action(action)
            each.add_ok_action(action)
        CfnOutput(
            self,
            "AlarmNames",
            value=",".join(a.alarm_name for a in self.alarms),
            description="Alarms signal-smoke checks are OK",
        )

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
