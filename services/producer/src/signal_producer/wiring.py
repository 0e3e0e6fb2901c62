"""Build the Kinesis client, the writer, its sinks and the replayed CSV's source from settings.

The only place the producer creates AWS clients (Kinesis, and S3 for a CSV in a bucket or for
dead letters bound for one).
`preflight` turns the failures a user can fix (no such stream, endpoint unreachable, missing or
rejected credentials) into one plain sentence before anything is sent, so they never surface as
a run of dead-lettered records.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
)

from signal_common.aws import error_code, error_message
from signal_producer.adapters.dead_letters import (
    DeadLetters,
    DeadLetterTargetError,
    dead_letter_location,
)
from signal_producer.adapters.faults import FaultInjectingKinesis
from signal_producer.adapters.files import DeadLetterSink, GroundTruthSink
from signal_producer.adapters.kinesis import KinesisWriter, WriterConfig, make_kinesis_client
from signal_producer.adapters.sources import (
    LocalSource,
    S3Source,
    Source,
    SourceError,
    make_s3_client,
    parse_s3_url,
)
from signal_producer.settings import ProducerSettings

# Error codes of a request AWS refused because of who sent it.
CREDENTIAL_CODES = frozenset(
    {
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "ExpiredTokenException",
        "InvalidClientTokenId",
        "SignatureDoesNotMatch",
        "IncompleteSignature",
        "MissingAuthenticationToken",
    }
)
ACCESS_DENIED_CODES = frozenset({"AccessDeniedException", "AccessDenied"})


class ProducerError(Exception):
    """An expected failure, told to the user as one sentence (no traceback)."""


def _where(settings: ProducerSettings) -> str:
    return settings.kinesis_endpoint_url or f"Kinesis in {settings.aws_region}"


def kinesis_client(settings: ProducerSettings) -> Any:
    """The boto3 Kinesis client of the settings (the writer does its own retries)."""
    try:
        return make_kinesis_client(
            region=settings.aws_region,
            endpoint_url=settings.kinesis_endpoint_url,
            concurrency=settings.concurrency,
        )
    except ProfileNotFound as exc:
        raise ProducerError(
            f"AWS profile {exc.kwargs.get('profile')!r} is not configured; fix AWS_PROFILE"
        ) from None
    except ValueError as exc:  # e.g. an endpoint URL that is not a URL
        raise ProducerError(f"cannot create the Kinesis client: {exc}") from None


def connect(settings: ProducerSettings) -> Any:
    """A client of the settings' stream, checked by `preflight`."""
    client = kinesis_client(settings)
    preflight(client, settings)
    return client


def preflight(client: Any, settings: ProducerSettings) -> None:
    """Raise ProducerError unless the stream exists, is writable and the caller is known."""
    stream, where = settings.stream_name, _where(settings)
    try:
        summary = client.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]
    except ClientError as exc:
        code, message = error_code(exc), error_message(exc)
        if code == "ResourceNotFoundException":
            raise ProducerError(
                f"stream {stream!r} does not exist at {where}; create it or pass --stream"
            ) from None
        if code in CREDENTIAL_CODES:
            raise ProducerError(
                f"{where} rejected the AWS credentials ({code}); check AWS_PROFILE or "
                "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"
            ) from None
        if code in ACCESS_DENIED_CODES:
            raise ProducerError(
                f"access denied to stream {stream!r} at {where} ({message}); the role needs "
                "kinesis:DescribeStreamSummary and kinesis:PutRecords"
            ) from None
        raise ProducerError(f"{where} refused DescribeStreamSummary: {code}: {message}") from None
    except (NoCredentialsError, PartialCredentialsError):
        raise ProducerError(
            "no AWS credentials found; set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"
        ) from None
    except (EndpointConnectionError, ConnectTimeoutError):
        raise ProducerError(
            f"cannot reach {where}; check --endpoint-url (SIGNAL_PRODUCER_KINESIS_ENDPOINT_URL) "
            "and that the endpoint is running"
        ) from None
    except NoRegionError:
        raise ProducerError("no AWS region; set SIGNAL_PRODUCER_AWS_REGION") from None
    except BotoCoreError as exc:
        raise ProducerError(f"cannot call {where}: {exc}") from None
    status = summary.get("StreamStatus")
    if status not in ("ACTIVE", "UPDATING"):
        raise ProducerError(f"stream {stream!r} at {where} is {status}, not ACTIVE; retry later")


def open_source(spec: str, settings: ProducerSettings) -> Source:
    """The CSV named by `spec`: an s3://bucket/key URL (read through the settings' S3
    endpoint) or a local path. Raises SourceError for a malformed URL."""
    if spec.startswith("s3:"):
        location = parse_s3_url(spec)
        client, where = _s3(settings)
        return S3Source(client, location, where=where)
    return LocalSource(Path(spec))


def _s3(settings: ProducerSettings) -> tuple[Any, str]:
    """The settings' S3 client and how messages name its endpoint (SourceError if it cannot be
    created)."""
    client = make_s3_client(region=settings.aws_region, endpoint_url=settings.s3_endpoint_url)
    return client, settings.s3_endpoint_url or f"S3 in {settings.aws_region}"


def dead_letters(settings: ProducerSettings) -> DeadLetters:
    """The run's dead-letter destination: a local path, or an s3:// object or prefix (spooled
    locally, uploaded when the run ends). Raises ProducerError for a malformed destination."""
    spec = settings.dead_letter_path
    if not spec.startswith("s3:"):
        return DeadLetters.local(Path(spec))
    try:
        location = dead_letter_location(
            spec, stream=settings.stream_name, now=dt.datetime.now(dt.UTC)
        )
        client, where = _s3(settings)
    except (DeadLetterTargetError, SourceError) as exc:
        raise ProducerError(str(exc)) from None
    return DeadLetters.to_s3(location, client=client, where=where)


@contextmanager
def open_writer(
    settings: ProducerSettings,
    client: Any,
    *,
    speedup: float = 0.0,
    fault_rate: float = 0.0,
    fault_rounds: int = 3,
    dead_letter_target: DeadLetters,
) -> Iterator[KinesisWriter]:
    """A writer through `client` (from `connect`) to the settings' stream with its dead-letter
    sink (writing `dead_letter_target`'s spool) and ground-truth sink, closed on exit (dead
    letters bound for S3 are uploaded then: see `dead_letter_target.location`). fault_rate > 0
    fails entries on purpose (chaos runs)."""
    if fault_rate > 0:
        client = FaultInjectingKinesis(client, entry_rate=fault_rate, rounds=fault_rounds)
    dead_letter = DeadLetterSink(dead_letter_target.spool)
    ground_truth = (
        GroundTruthSink(Path(settings.ground_truth_path)) if settings.ground_truth_path else None
    )
    try:
        yield KinesisWriter(
            client,
            WriterConfig(
                stream_name=settings.stream_name,
                max_attempts=settings.max_attempts,
                base_backoff_s=settings.base_backoff_s,
                max_backoff_s=settings.max_backoff_s,
                concurrency=settings.concurrency,
                target_rps=settings.target_rps,
                speedup=speedup,
                linger_s=settings.linger_s,
            ),
            dead_letter=dead_letter,
            ground_truth=ground_truth,
        )
    finally:
        dead_letter.close()
        dead_letter_target.finish(dead_letter.count)
        if ground_truth is not None:
            ground_truth.close()
