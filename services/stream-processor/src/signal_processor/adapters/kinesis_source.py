"""A Structured Streaming source for Kinesis on open-source Spark 4 (Python Data Source API).

Open-source Spark has no Kinesis source, so this is one. Design:

* Offsets are JSON dicts `{"n": N, "t": ms, "shards": {shard_id: position}, "finished": [...]}`;
  a position is `{"after": seq, "seen_ms": ms}` (AFTER_SEQUENCE_NUMBER; `seen_ms`: the shard
  is known to be read up to that time, the later of that record's arrival and the last read that
  reached the shard's tip), `{"at": "TRIM_HORIZON"}` or `{"at_timestamp": ms}`. The batch that
  *ends* at offset N reads each shard from the positions in offset N.
* Every row carries `read_time`: the time its batch was planned (`t` of offset N, monotonic
  across batches and stored in Spark's offset log, so a replay gives the same value). The
  processor's dedup watermark runs on it: all rows of a batch share one read time that is newer
  than any earlier batch's, so no shard's backlog can ever be "late" against another shard's
  newer records, whatever the skew.
* Records are fetched on executors, one input partition per shard. The executor decides how far
  to read (max records, caught up, time budget) and records that boundary in a durable progress
  log (`boundaries/N/<shard>`, create-if-absent). A replayed batch finds the boundary and reads
  exactly the same records; the driver plans offset N+1 from the boundaries of offset N.
* Resharding: a closed shard read to its end is `finished`; its children start (TRIM_HORIZON)
  only once all their parents are finished, so per-key order is preserved.
* Expired iterators are re-acquired after the last record read; throttling is backed off with
  jitter; GetRecords calls are spaced to at most `maxCallsPerSecond` per shard.
* KPL-aggregated records are de-aggregated (sub-sequence numbers exposed).

Option keys reach the reader lower-cased; the reader is pickled to executors, so it holds only
plain data and creates boto3 clients lazily.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import logging
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
from pyspark.sql.datasource import DataSource, DataSourceStreamReader, InputPartition
from pyspark.sql.types import StructType

from signal_processor.adapters.progress import ProgressStore, progress_store

log = logging.getLogger(__name__)

SOURCE_NAME = "signal_kinesis"
SOURCE_SCHEMA = (
    "data binary, stream string, shard_id string, sequence_number string, "
    "sub_sequence_number bigint, partition_key string, arrival_time timestamp, "
    "read_time timestamp"
)
_ARROW_SCHEMA = pa.schema(
    [
        ("data", pa.binary()),
        ("stream", pa.string()),
        ("shard_id", pa.string()),
        ("sequence_number", pa.string()),
        ("sub_sequence_number", pa.int64()),
        ("partition_key", pa.string()),
        ("arrival_time", pa.timestamp("us", tz="UTC")),
        ("read_time", pa.timestamp("us", tz="UTC")),
    ]
)
_KPL_MAGIC = b"\xf3\x89\x9a\xc2"
_RETRYABLE = {
    "ProvisionedThroughputExceededException",
    "LimitExceededException",
    "ThrottlingException",
    "KMSThrottlingException",
    "InternalFailure",
    "ServiceUnavailable",
}


class KinesisSourceError(RuntimeError):
    """The Kinesis source cannot continue (bad options, stream missing, retries exhausted)."""


class RetentionGapError(KinesisSourceError):
    """Records between the source's position and the stream's trim horizon may be gone."""


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
            code = exc.response.get("Error", {}).get("Code", "")
            if code not in _RETRYABLE or attempt == max_retries:
                raise
        # refused / unreachable (EndpointConnectionError, ConnectTimeoutError), reset or timed
        # out mid-call (ConnectionClosedError, ReadTimeoutError)
        except (BotoConnectionError, HTTPClientError) as exc:
            if attempt == max_retries:
                raise
            code = type(exc).__name__
        delay = min(5.0, 0.1 * 2**attempt) * random.uniform(0.5, 1.0)
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


def _parents(shard: dict[str, Any]) -> list[str]:
    return [p for p in (shard.get("ParentShardId"), shard.get("AdjacentParentShardId")) if p]


def initial_positions(
    shards: list[dict[str, Any]], opts: SourceOptions, now_ms: int
) -> dict[str, dict[str, Any]]:
    """Starting positions: root shards (no parent still in the stream) at the start position."""
    if opts.starting_position == "trim_horizon":
        start: dict[str, Any] = {"at": "TRIM_HORIZON"}
    elif opts.starting_position == "latest":
        # pinned as a timestamp so a restart before the first commit reads the same records
        start = {"at_timestamp": now_ms}
    else:
        start = {"at_timestamp": opts.starting_timestamp_ms}
    present = {s["ShardId"] for s in shards}
    return {s["ShardId"]: dict(start) for s in shards if not any(p in present for p in _parents(s))}


def resume_state(current: dict[str, Any], boundaries: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Where reading continues after the batch that read `boundaries` from offset `current`:
    `{"shards": {shard_id: position}, "finished": [...]}` (shards not yet started are absent)."""
    finished = set(current.get("finished", []))
    positions: dict[str, dict[str, Any]] = {}
    for shard_id, position in current["shards"].items():
        boundary = boundaries.get(shard_id, {})
        if boundary.get("closed"):
            finished.add(shard_id)
            continue
        last = boundary.get("last_seq")
        seen = [boundary.get("last_arrival_ms"), boundary.get("caught_up_ms")]
        seen_ms = max((int(v) for v in seen if v is not None), default=None)
        if last:
            positions[shard_id] = {"after": last, "seen_ms": seen_ms}
        elif "after" in position and seen_ms is not None:
            positions[shard_id] = {
                **position,
                "seen_ms": max(seen_ms, position.get("seen_ms") or 0),
            }
        else:
            positions[shard_id] = position
    return {"shards": positions, "finished": sorted(finished)}


def next_offset(
    current: dict[str, Any],
    boundaries: dict[str, dict[str, Any]],
    shards: list[dict[str, Any]],
    *,
    now_ms: int,
) -> dict[str, Any]:
    """Offset N+1 from offset N, the boundaries its batch recorded, and the stream's shards.

    Its read time `t` is `now_ms`, but never earlier than offset N's (a clock step back must
    not make a batch older than the one before it)."""
    state = resume_state(current, boundaries)
    finished, positions = set(state["finished"]), state["shards"]
    present = {s["ShardId"] for s in shards}
    for shard in shards:
        shard_id = shard["ShardId"]
        if shard_id in positions or shard_id in finished:
            continue
        parents = _parents(shard)
        if all(p in finished or p not in present for p in parents):
            positions[shard_id] = {"at": "TRIM_HORIZON"}
    # forget finished shards that the stream no longer lists (past retention)
    finished &= present | set(positions)
    return {
        "n": current["n"] + 1,
        "t": max(now_ms, int(current.get("t", 0)) + 1),
        "shards": positions,
        "finished": sorted(finished),
    }


@dataclass
class ShardRead:
    """What one executor read from one shard for one batch."""

    rows: list[tuple[Any, ...]] = field(default_factory=list)
    last_seq: str | None = None
    last_arrival_ms: int | None = None
    caught_up_ms: int | None = None  # wall time at which the read reached the shard's tip
    kinesis_records: int = 0
    closed: bool = False
    millis_behind: int | None = None  # MillisBehindLatest of the last GetRecords response


def _iterator(client: Any, opts: SourceOptions, shard_id: str, position: dict[str, Any]) -> str:
    kwargs: dict[str, Any] = {"StreamName": opts.stream, "ShardId": shard_id}
    if "after" in position:
        kwargs.update(
            ShardIteratorType="AFTER_SEQUENCE_NUMBER", StartingSequenceNumber=position["after"]
        )
    elif "at_timestamp" in position:
        kwargs.update(
            ShardIteratorType="AT_TIMESTAMP",
            Timestamp=dt.datetime.fromtimestamp(position["at_timestamp"] / 1000, dt.UTC),
        )
    else:
        kwargs.update(ShardIteratorType=position["at"])
    response = call_with_backoff(client.get_shard_iterator, max_retries=opts.max_retries, **kwargs)
    return str(response["ShardIterator"])


def _user_records(record: dict[str, Any], data: bytes) -> Iterator[tuple[bytes, str, int]]:
    """(data, partition key, sub-sequence number) of a record, de-aggregating KPL records."""
    if not data.startswith(_KPL_MAGIC):
        yield data, record["PartitionKey"], 0
        return
    import base64

    from aws_kinesis_agg.deaggregator import iter_deaggregate_records

    boto3_form = {**record, "Data": data}
    for index, user in enumerate(iter_deaggregate_records(boto3_form, data_format="Boto3")):
        k = user["kinesis"]
        payload = k["data"]
        if k.get("aggregated"):
            payload = base64.b64decode(payload)
        yield payload, k["partitionKey"], int(k.get("subSequenceNumber", index))


def read_shard(
    client: Any,
    opts: SourceOptions,
    shard_id: str,
    position: dict[str, Any],
    *,
    boundary: dict[str, Any] | None,
    max_records: int,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> ShardRead:
    """Read one shard from `position`: up to a recorded `boundary`, or decide a new one.

    `client` makes the calls (a ShardReader, whose get_records returns the service's JSON).
    """
    from botocore.exceptions import ClientError

    result = ShardRead()
    if boundary is not None and not boundary.get("last_seq") and not boundary.get("closed"):
        return result  # the recorded attempt read nothing
    iterator: str | None = _iterator(client, opts, shard_id, position)
    started = clock()
    min_interval = 1.0 / opts.max_calls_per_second
    last_call = -min_interval
    while iterator is not None:
        wait = min_interval - (clock() - last_call)
        if wait > 0:
            sleep(wait)
        last_call = clock()
        limit = min(opts.get_records_limit, max(1, max_records - result.kinesis_records))
        try:
            response = call_with_backoff(
                client.get_records,
                max_retries=opts.max_retries,
                sleep=sleep,
                ShardIterator=iterator,
                Limit=limit,
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ExpiredIteratorException":
                raise
            resume = {"after": result.last_seq} if result.last_seq else position
            log.info("shard iterator expired; re-acquiring", extra={"shard": shard_id})
            iterator = _iterator(client, opts, shard_id, resume)
            continue
        records = response.get("Records", [])
        if "MillisBehindLatest" in response:
            result.millis_behind = int(response["MillisBehindLatest"])
        for record in records:
            seq = record["SequenceNumber"]
            payload, arrival_us = decode_record(record)
            for data, key, sub in _user_records(record, payload):
                result.rows.append((data, opts.stream, shard_id, seq, sub, key, arrival_us))
            result.last_seq = seq
            result.last_arrival_ms = arrival_us // 1000
            result.kinesis_records += 1
            if boundary is not None and seq == boundary.get("last_seq"):
                return result
        iterator = response.get("NextShardIterator")
        if iterator is None:
            result.closed = True
            return result
        if boundary is not None:
            continue  # replay: keep going until the recorded boundary, whatever the budget
        # at the tip of the shard (nothing behind) and the page was not full: nothing more to read
        caught_up = response.get("MillisBehindLatest", 0) == 0 and len(records) < limit
        if caught_up:
            result.caught_up_ms = int(time.time() * 1000)
        if (
            caught_up
            or result.kinesis_records >= max_records
            or clock() - started >= opts.max_read_seconds
        ):
            return result
    return result


class ShardPartition(InputPartition):
    """One shard's slice of one batch."""

    def __init__(
        self, n: int, shard_id: str, position: dict[str, Any], max_records: int, read_time_ms: int
    ) -> None:
        super().__init__((n, shard_id))
        self.n = n
        self.shard_id = shard_id
        self.position = position
        self.max_records = max_records
        self.read_time_ms = read_time_ms


class KinesisStreamReader(DataSourceStreamReader):
    """Driver-side planning (offsets) and executor-side reads (`read`)."""

    def __init__(self, opts: SourceOptions) -> None:
        self.opts = opts

    def _store(self) -> ProgressStore:
        return progress_store(
            self.opts.progress_location,
            region=self.opts.region,
            endpoint_url=self.opts.s3_endpoint_url,
        )

    def initialOffset(self) -> dict[str, Any]:  # noqa: N802 (Spark's API name)
        store = self._store()
        planned = store.get("planned")
        if planned is not None and planned.get("n") == 0:
            return planned  # already pinned (a `latest` start must not move)
        if planned is not None:
            log.warning("progress log holds offsets of an older checkpoint; starting over")
        shards = list_all_shards(kinesis_client(self.opts), self.opts.stream, self.opts.max_retries)
        if not shards:
            raise KinesisSourceError(f"stream {self.opts.stream} has no shards")
        now_ms = int(time.time() * 1000)
        if self.opts.initial_positions:
            # continue exactly where the lake's last committed batch ended
            state = json.loads(self.opts.initial_positions)
            resumed = {"n": -1, "shards": state["shards"], "finished": state["finished"]}
            offset = {**next_offset(resumed, {}, shards, now_ms=now_ms), "n": 0}
            log.info("starting where the lake ends", extra={"positions": offset["shards"]})
        else:
            offset = {
                "n": 0,
                "t": now_ms,
                "shards": initial_positions(shards, self.opts, now_ms),
                "finished": [],
            }
        store.put("planned", offset)
        return offset

    def latestOffset(self, *args: Any) -> dict[str, Any]:  # noqa: N802
        # Spark 4.0/4.1 call latestOffset(); 4.2+ pass (start, limit): the log serves both.
        store = self._store()
        current = store.get("planned")
        if current is None:
            return self.initialOffset()
        boundaries: dict[str, dict[str, Any]] = {}
        for shard_id in current["shards"]:
            boundary = store.get(f"boundaries/{current['n']}/{shard_id}")
            if boundary is None:
                if current["n"] == 0:
                    # Spark took the initial offset as its start: nothing was read yet
                    boundaries = {s: {} for s in current["shards"]}
                    break
                return current  # the batch ending at `current` has not run yet
            boundaries[shard_id] = boundary
        client = kinesis_client(self.opts)
        shards = list_all_shards(client, self.opts.stream, self.opts.max_retries)
        offset = next_offset(current, boundaries, shards, now_ms=int(time.time() * 1000))
        check_retention(client, self.opts, offset, now_ms=offset["t"])
        store.put("planned", offset)
        return offset

    def partitions(self, start: dict[str, Any], end: dict[str, Any]) -> list[InputPartition]:
        if "t" not in end:
            raise KinesisSourceError(
                "this checkpoint was written by stream-processor 0.2 (its offsets have no read "
                "time); start a new checkpoint: the job continues where the lake ends"
            )
        shard_ids = sorted(end["shards"])
        per_shard = max(1, self.opts.max_records_per_batch // max(1, len(shard_ids)))
        return [
            ShardPartition(end["n"], s, end["shards"][s], per_shard, int(end["t"]))
            for s in shard_ids
        ]

    def read(self, partition: ShardPartition) -> Iterator[pa.RecordBatch]:  # type: ignore[override]
        store = self._store()
        key = f"boundaries/{partition.n}/{partition.shard_id}"
        boundary = store.get(key)
        client = shard_reader(self.opts)

        def read_up_to(recorded: dict[str, Any] | None) -> ShardRead:
            return read_shard(
                client,
                self.opts,
                partition.shard_id,
                partition.position,
                boundary=recorded,
                max_records=partition.max_records,
            )

        result = read_up_to(boundary)
        if boundary is None:
            decided = {
                "last_seq": result.last_seq,
                "last_arrival_ms": result.last_arrival_ms,
                "caught_up_ms": result.caught_up_ms,
                "kinesis_records": result.kinesis_records,
                "user_records": len(result.rows),
                "closed": result.closed,
                "millis_behind": result.millis_behind,
            }
            stored = store.put_if_absent(key, decided)
            if stored != decided:  # a concurrent attempt won: read exactly what it recorded
                result = read_up_to(stored)
        if result.rows:
            columns = list(zip(*result.rows, strict=True))
            arrays = [
                pa.array(col, type=_ARROW_SCHEMA.field(i).type) for i, col in enumerate(columns)
            ]
            read_time = pa.scalar(
                partition.read_time_ms * 1000, _ARROW_SCHEMA.field("read_time").type
            )
            arrays.append(pa.repeat(read_time, len(result.rows)))
            yield pa.RecordBatch.from_arrays(arrays, schema=_ARROW_SCHEMA)

    def commit(self, end: dict[str, Any]) -> None:
        # keep a few old boundaries for diagnosis; older ones are never read again
        self._store().delete_below("boundaries", keep_from=int(end["n"]) - 5)


class KinesisDataSource(DataSource):
    """`spark.readStream.format("signal_kinesis")`: see the module docstring for options."""

    @classmethod
    def name(cls) -> str:
        return SOURCE_NAME

    def schema(self) -> str:
        return SOURCE_SCHEMA

    def streamReader(self, schema: StructType) -> DataSourceStreamReader:  # noqa: N802
        return KinesisStreamReader(SourceOptions.parse(dict(self.options)))


def batch_boundaries(
    store: ProgressStore, offset: dict[str, Any]
) -> dict[str, dict[str, Any]] | None:
    """What the batch that ends at `offset` read from each shard (None if not all recorded)."""
    boundaries = {}
    for shard_id in offset["shards"]:
        boundary = store.get(f"boundaries/{offset['n']}/{shard_id}")
        if boundary is None:
            return None
        boundaries[shard_id] = boundary
    return boundaries


def check_retention(
    client: Any, opts: SourceOptions, offset: dict[str, Any], *, now_ms: int
) -> None:
    """Fail plainly when a shard's position is older than the stream's retention.

    A shard read up to time `seen_ms` can only have lost records that arrived after it; they
    are gone once `seen_ms` is older than the retention period (after a long stop). Reading on
    from the position would then continue at the trim horizon without a word, so the job stops
    with one sentence instead. Only positions not seen for over an hour are checked (one
    DescribeStreamSummary, then one GetRecords at the trim horizon per such shard); a caught-up
    shard is seen at every batch, so steady operation makes no extra calls.
    """
    old = {
        shard_id: position
        for shard_id, position in offset["shards"].items()
        if position.get("seen_ms") is not None
        and now_ms - int(position["seen_ms"]) > 3_600_000  # retention is at least 24 h
    }
    if not old:
        return
    summary = call_with_backoff(
        client.describe_stream_summary, max_retries=opts.max_retries, StreamName=opts.stream
    )["StreamDescriptionSummary"]
    retention_ms = int(summary["RetentionPeriodHours"]) * 3_600_000
    for shard_id, position in old.items():
        if now_ms - int(position["seen_ms"]) <= retention_ms:
            continue
        iterator = _iterator(client, opts, shard_id, {"at": "TRIM_HORIZON"})
        page = call_with_backoff(
            client.get_records, max_retries=opts.max_retries, ShardIterator=iterator, Limit=1
        )
        records = page.get("Records", [])
        if records and int(records[0]["SequenceNumber"]) > int(position["after"]):
            oldest = records[0]["ApproximateArrivalTimestamp"]
            oldest_ms = int(
                oldest.timestamp() * 1000 if hasattr(oldest, "timestamp") else oldest * 1000
            )
            raise RetentionGapError(
                f"shard {shard_id} of stream {opts.stream} was last read up to "
                f"{_iso(int(position['seen_ms']))} (after sequence {position['after']}), longer "
                f"ago than the stream's {retention_ms // 3_600_000} h retention, and its oldest "
                f"retained record arrived {_iso(oldest_ms)}: records that arrived in between "
                "have been deleted. See the stream-processor runbook, 'Retention gap'."
            )


def _iso(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).isoformat(timespec="seconds")
