"""The one place the smoke's adapters are built from its target and handed to the run."""

from __future__ import annotations

import datetime as dt
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import boto3
import httpx

from signal_smoke.adapters import aws, http
from signal_smoke.core.marker import MarkerRecord
from signal_smoke.core.target import Target
from signal_smoke.settings import SmokeSettings


class SystemClock:
    """The real clocks."""

    def monotonic(self) -> float:
        return time.monotonic()

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


def aws_client(service: str, target: Target) -> Any:
    """A boto3 client in the target's region, at its endpoint for `service` if one is set."""
    return boto3.client(
        service, region_name=target.region, endpoint_url=target.endpoints.get(service) or None
    )


@dataclass
class AwsAndHttpPorts:
    """The run's ports over boto3 clients and one HTTP client (built lazily: a skipped check
    builds no client)."""

    target: Target
    http_client: httpx.Client
    api: http.ApiClient
    rng: random.Random = field(default_factory=random.Random)
    _clients: dict[str, Any] = field(default_factory=dict)

    def _client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = aws_client(service, self.target)
        return self._clients[service]

    def put_records(self, records: Sequence[MarkerRecord]) -> None:
        aws.put_records(self._client("kinesis"), self.target.stream, records, rng=self.rng)

    def api_get(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        return self.api.get(path, params)

    def dashboard_health(self) -> tuple[int, str]:
        return http.dashboard_health(self.http_client, self.target.dashboard_url)

    def glue_job_runs(self, job_name: str) -> list[dict[str, Any]]:
        return aws.glue_job_runs(self._client("glue"), job_name)

    def alarms(self, names: Sequence[str], prefix: str | None) -> list[dict[str, Any]]:
        return aws.alarms(self._client("cloudwatch"), names, prefix)


def api_key_of(target: Target) -> str | None:
    """The key given directly, else the secret's value, else none (an API without auth)."""
    if target.api_key:
        return target.api_key
    if target.api_key_secret:
        return aws.secret_string(aws_client("secretsmanager", target), target.api_key_secret)
    return None


def build_ports(target: Target, settings: SmokeSettings, *, need_key: bool) -> AwsAndHttpPorts:
    """The ports of a run against `target` (reads the API key's secret now, if needed)."""
    key = api_key_of(target) if need_key else None
    client = httpx.Client(timeout=settings.http_timeout_s, follow_redirects=True)
    api = http.ApiClient(client, target.api_url, key)
    return AwsAndHttpPorts(target=target, http_client=client, api=api)
