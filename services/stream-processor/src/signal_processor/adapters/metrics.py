"""The processor's CloudWatch metrics (the consumer lag), behind a small publisher Protocol."""

from __future__ import annotations

from typing import Protocol

from signal_processor.adapters.aws_clients import aws_client


class MetricsPublisher(Protocol):
    def consumer_lag(self, stream: str, millis_behind: int) -> None: ...


class CloudWatchMetrics:
    """Publishes the consumer lag (MillisBehindLatest, max over shards) to CloudWatch."""

    NAMESPACE = "SignalStream/StreamProcessor"

    def __init__(self, *, region: str, endpoint_url: str | None) -> None:
        self.region, self.endpoint_url = region, endpoint_url

    def consumer_lag(self, stream: str, millis_behind: int) -> None:
        aws_client("cloudwatch", self.region, self.endpoint_url).put_metric_data(
            Namespace=self.NAMESPACE,
            MetricData=[
                {
                    "MetricName": "MillisBehindLatest",
                    "Dimensions": [{"Name": "Stream", "Value": stream}],
                    "Value": float(millis_behind),
                    "Unit": "Milliseconds",
                }
            ],
        )
