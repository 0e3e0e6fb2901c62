"""This process's boto3 clients: one per service, region and endpoint, made on first use.

Creating a boto3 client costs milliseconds and loads the service model; the lake writer, the
progress log and the metrics publisher call S3 and CloudWatch for every batch, so each process
keeps one client per (service, region, endpoint). boto3 clients are thread-safe.
"""

from __future__ import annotations

import functools
from typing import Any


@functools.lru_cache(maxsize=8)
def aws_client(service: str, region: str, endpoint_url: str | None) -> Any:
    """The process-wide client for `service` (botocore's adaptive retries: 5xx, throttling,
    connection errors)."""
    import boto3
    from botocore.config import Config

    config = Config(retries={"max_attempts": 8, "mode": "adaptive"}, connect_timeout=10)
    return boto3.client(service, region_name=region, endpoint_url=endpoint_url, config=config)
