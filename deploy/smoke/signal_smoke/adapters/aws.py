"""Kinesis, Secrets Manager, Glue and CloudWatch calls, their refusals as one sentence each."""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from typing import Any, NoReturn

from botocore.exceptions import BotoCoreError, ClientError

from signal_common.aws import backoff_s, error_code, error_message
from signal_smoke.core.errors import RefusedError, UnavailableError
from signal_smoke.core.marker import MarkerRecord

# error codes worth another try (Kinesis/Glue/CloudWatch throttling, service hiccups)
_TRANSIENT = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "Throttling",
        "LimitExceededException",
        "InternalFailure",
        "InternalServiceException",
        "ServiceUnavailable",
        "KMSThrottlingException",
    }
)
PUT_ATTEMPTS = 5


def _sentence(service: str, call: str, exc: Exception) -> str:
    if isinstance(exc, ClientError):
        code, message = error_code(exc, "Error"), error_message(exc, limit=None)
        return f"{service} refused {call}: {code}: {message}".rstrip(": ")
    return f"{service} {call} failed: {' '.join(str(exc).split())}"


def _raise(service: str, call: str, exc: Exception) -> NoReturn:
    """A ClientError with a definitive code is a refusal; anything else may pass."""
    if isinstance(exc, ClientError) and error_code(exc) not in _TRANSIENT:
        raise RefusedError(_sentence(service, call, exc)) from exc
    raise UnavailableError(_sentence(service, call, exc)) from exc


def _backoff(attempt: int, rng: random.Random) -> float:
    """Jittered exponential backoff after 0-based attempt `attempt`: 0.1 s, 0.2 s, … capped at
    2 s (full jitter)."""
    return backoff_s(attempt + 1, base_s=0.1, cap_s=2.0, rng=rng)


def put_records(
    kinesis: Any, stream: str, records: Sequence[MarkerRecord], *, rng: random.Random
) -> None:
    """PutRecords of every record (one call: the smoke sends at most 500), retrying the
    entries Kinesis failed with a bounded, jittered backoff."""
    pending = list(records)
    last_error = ""
    for attempt in range(PUT_ATTEMPTS):
        try:
            answer = kinesis.put_records(
                StreamName=stream,
                Records=[{"Data": r.data, "PartitionKey": r.partition_key} for r in pending],
            )
        except (ClientError, BotoCoreError) as exc:
            definitive = isinstance(exc, ClientError) and error_code(exc) not in _TRANSIENT
            if definitive or attempt == PUT_ATTEMPTS - 1:
                _raise("Kinesis", f"PutRecords to {stream}", exc)
            time.sleep(_backoff(attempt, rng))
            continue
        failed = [
            (record, entry)
            for record, entry in zip(pending, answer["Records"], strict=True)
            if entry.get("ErrorCode")
        ]
        if not failed:
            return
        last_error = f"{failed[0][1]['ErrorCode']}: {failed[0][1].get('ErrorMessage', '')}"
        pending = [record for record, _ in failed]
        time.sleep(_backoff(attempt, rng))
    raise UnavailableError(
        f"Kinesis did not accept {len(pending)} of {len(records)} records to {stream} after "
        f"{PUT_ATTEMPTS} attempts ({last_error})"
    )


def secret_string(secrets: Any, secret_id: str) -> str:
    """The secret's current string value (the dashboard's API key)."""
    try:
        value = secrets.get_secret_value(SecretId=secret_id)
    except (ClientError, BotoCoreError) as exc:
        _raise("Secrets Manager", f"GetSecretValue of {secret_id}", exc)
    if "SecretString" not in value:
        raise RefusedError(f"the secret {secret_id} holds binary data, not an API key")
    return str(value["SecretString"]).strip()


def glue_job_runs(glue: Any, job_name: str) -> list[dict[str, Any]]:
    """The job's most recent runs (Glue lists them newest first)."""
    try:
        return list(glue.get_job_runs(JobName=job_name, MaxResults=10)["JobRuns"])
    except (ClientError, BotoCoreError) as exc:
        _raise("Glue", f"GetJobRuns of {job_name}", exc)


def alarms(cloudwatch: Any, names: Sequence[str], prefix: str | None) -> list[dict[str, Any]]:
    """The metric and composite alarms with these names, or whose names start with `prefix`."""
    query: dict[str, Any] = {"AlarmNames": list(names)} if names else {"AlarmNamePrefix": prefix}
    found: list[dict[str, Any]] = []
    try:
        for page in cloudwatch.get_paginator("describe_alarms").paginate(
            **query, AlarmTypes=["MetricAlarm", "CompositeAlarm"]
        ):
            found.extend(page.get("MetricAlarms", []))
            found.extend(page.get("CompositeAlarms", []))
    except (ClientError, BotoCoreError) as exc:
        _raise("CloudWatch", "DescribeAlarms", exc)
    return found
