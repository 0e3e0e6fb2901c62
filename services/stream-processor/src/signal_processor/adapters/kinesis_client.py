"""The Kinesis side of the source: its options, its boto3 clients and calls, and their backoff.

Option keys reach the reader lower-cased; the reader is pickled to executors, so the options are
plain data and clients are created lazily, in the process that calls.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from signal_common.aws import backoff_s, error_code

log = logging.getLogger(__name__)

_RETRYABLE = {
    "ProvisionedThroughputExceededException",
    "LimitExceededException",
    "ThrottlingException",
    "KMSThrottlingException",
    "InternalFailure",
    "ServiceUnavailable",
}

# jitter of the backoff (one generator per process: its draws need no seed)
_RNG = random.Random()


class KinesisSourceError(RuntimeError):
    """The Kinesis source cannot continue (bad options, stream missing, retries exhausted)."""


@dataclass(frozen=True)
class SourceOptions:
    """Validated options of the source (all plain data: the reader is pickled)."""

    stream: str
    progress_location: str
    region: str = "us-east-1"
    endpoint_url: str | None = None
    starting_position: str = "trim_horizon"
    starting_timestamp_ms: int | None = None
    max_records_per_batch: int = 100_000
    max_read_seconds: float = 15.0
    max_calls_per_second: float = 5.0
    get_records_limit: int = 10_000
    max_retries: int = 8
    # where a new checkpoint starts instead of startingPosition: the lake's last commit
    # (JSON {"shards": {...}, "finished": [...]}, as `resume_state` returns)
    s3_endpoint_url: str | None = None  # for an s3:// progress location (local runs)
    initial_positions: str | None = None
    # plausible event times (validated source): at most this far ahead of / behind arrival
    max_event_ahead_seconds: float = 300.0
    max_event_behind_seconds: float = 30 * 86400.0

    @classmethod
    def parse(cls, options: dict[str, str]) -> SourceOptions:
        """Parse (lower-cased) option keys; raise KinesisSourceError on anything wrong."""
        o = {k.lower(): v for k, v in options.items()}
        if not o.get("streamname"):
            raise KinesisSourceError("option streamName is required")
        if not o.get("progresslocation"):
            raise KinesisSourceError("option progressLocation is required")
        position = o.get("startingposition", "trim_horizon").lower()
        if position not in ("trim_horizon", "latest", "at_timestamp"):
            raise KinesisSourceError(
                f"startingPosition must be trim_horizon, latest or at_timestamp, not {position!r}"
            )
        timestamp_ms = None
        if position == "at_timestamp":
            raw = o.get("startingtimestamp")
            if not raw:
                raise KinesisSourceError("startingPosition at_timestamp needs startingTimestamp")
            timestamp_ms = _parse_timestamp_ms(raw)
        try:
            return cls(
                stream=o["streamname"],
                progress_location=o["progresslocation"],
                region=o.get("region", "us-east-1"),
                endpoint_url=o.get("endpointurl") or None,
                starting_position=position,
                starting_timestamp_ms=timestamp_ms,
                max_records_per_batch=int(o.get("maxrecordsperbatch", 100_000)),
                max_read_seconds=float(o.get("maxreadseconds", 15.0)),
                max_calls_per_second=float(o.get("maxcallspersecond", 5.0)),
                get_records_limit=int(o.get("getrecordslimit", 10_000)),
                max_retries=int(o.get("maxretries", 8)),
                s3_endpoint_url=o.get("s3endpointurl") or None,
                initial_positions=o.get("initialpositions") or None,
                max_event_ahead_seconds=float(o.get("maxeventaheadseconds", 300.0)),
                max_event_behind_seconds=float(o.get("maxeventbehindseconds", 30 * 86400.0)),
            )
        except ValueError as exc:
            raise KinesisSourceError(f"invalid Kinesis source option: {exc}") from None


def _parse_timestamp_ms(raw: str) -> int:
    if raw.isdigit():
        return int(raw)
    parsed = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return int(parsed.timestamp() * 1000)


def kinesis_client(opts: SourceOptions, session: Any = None) -> Any:
    """A boto3 Kinesis client for the options' region and endpoint (botocore retries off:
    `call_with_backoff` decides)."""
    import boto3
    from botocore.config import Config

    config = Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=10)
    return (session or boto3).client(
        "kinesis", region_name=opts.region, endpoint_url=opts.endpoint_url, config=config
    )


class ShardReader:
    """The Kinesis calls of an executor's shard read.

    `get_shard_iterator` goes through boto3. `get_records` is the same signed GetRecords call
    (boto3's endpoint, credential chain and SigV4 signer), but its response is returned as the
    service's JSON, records as they arrive (`Data` in base64, `ApproximateArrivalTimestamp` in
    epoch seconds), decoded by `decode_record`. botocore's per-record shape walk cost more than
    half of a read's CPU (about 20 µs a record); `json` and `base64` decode in C.
    Errors raise botocore's ClientError with the service's error code, as boto3 would.
    """

    _TARGET = "Kinesis_20131202.GetRecords"

    def __init__(self, opts: SourceOptions) -> None:
        import boto3
        from botocore.httpsession import URLLib3Session

        self._session = boto3.session.Session(region_name=opts.region)
        self._client = kinesis_client(opts, self._session)
        self._url = self._client.meta.endpoint_url.rstrip("/") + "/"
        self._region = self._client.meta.region_name
        self._http = URLLib3Session(timeout=(10, 60))

    def get_shard_iterator(self, **kwargs: Any) -> Any:
        return self._client.get_shard_iterator(**kwargs)

    def get_records(self, *, ShardIterator: str, Limit: int) -> dict[str, Any]:  # noqa: N803
        import json

        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.exceptions import ClientError, NoCredentialsError

        credentials = self._session.get_credentials()
        if credentials is None:
            raise NoCredentialsError()
        body = json.dumps({"ShardIterator": ShardIterator, "Limit": Limit}).encode()
        request = AWSRequest(
            method="POST",
            url=self._url,
            data=body,
            headers={"X-Amz-Target": self._TARGET, "Content-Type": "application/x-amz-json-1.1"},
        )
        SigV4Auth(credentials.get_frozen_credentials(), "kinesis", self._region).add_auth(request)
        response = self._http.send(request.prepare())
        try:
            parsed = json.loads(response.content) if response.content else {}
        except ValueError:
            parsed = {}
        if response.status_code >= 300:
            code = str(parsed.get("__type", "")).rsplit("#", 1)[-1] or (
                "ServiceUnavailable" if response.status_code >= 500 else str(response.status_code)
            )
            message = parsed.get("message") or parsed.get("Message") or response.text[:200]
            error = {
                "Error": {"Code": code, "Message": message},
                "ResponseMetadata": {"HTTPStatusCode": response.status_code},
            }
            raise ClientError(error, "GetRecords")
        return dict(parsed)


@functools.lru_cache(maxsize=8)
def shard_reader(opts: SourceOptions) -> ShardReader:
    """This process's ShardReader for the options (Python workers are reused across tasks)."""
    return ShardReader(opts)


def decode_record(record: dict[str, Any]) -> tuple[bytes, int]:
    """(data, arrival time in epoch microseconds, to the millisecond) of a GetRecords record."""
    import base64

    return base64.b64decode(record["Data"]), round(
        record["ApproximateArrivalTimestamp"] * 1000
    ) * 1000


def call_with_backoff(
    fn: Callable[..., Any],
    *,
    max_retries: int,
    sleep: Callable[[float], None] = time.sleep,
    **kwargs: Any,
) -> Any:
    """Call a Kinesis API, retrying throttling, transient errors and connection failures
    (refused, reset, timed out) with jittered backoff."""
    from botocore.exceptions import ClientError, HTTPClientError
    from botocore.exceptions import ConnectionError as BotoConnectionError

    for attempt in range(max_retries + 1):
        try:
            return fn(**kwargs)
        except ClientError as exc:
            code = error_code(exc)
            if code not in _RETRYABLE or attempt == max_retries:
                raise
        # refused / unreachable (EndpointConnectionError, ConnectTimeoutError), reset or timed
        # out mid-call (ConnectionClosedError, ReadTimeoutError)
        except (BotoConnectionError, HTTPClientError) as exc:
            if attempt == max_retries:
                raise
            code = type(exc).__name__
        # equal jitter: between half and all of min(5 s, 0.1 s * 2**attempt)
        delay = backoff_s(attempt + 1, base_s=0.1, cap_s=5.0, rng=_RNG, jitter="equal")
        log.warning("kinesis call failed; backing off", extra={"code": code, "delay": delay})
        sleep(delay)
    raise AssertionError("unreachable")


def list_all_shards(client: Any, stream: str, max_retries: int = 8) -> list[dict[str, Any]]:
    """Every shard of the stream (open and closed), following pagination."""
    shards: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"StreamName": stream}
    while True:
        page = call_with_backoff(client.list_shards, max_retries=max_retries, **kwargs)
        shards.extend(page["Shards"])
        token = page.get("NextToken")
        if not token:
            return shards
        kwargs = {"NextToken": token}
