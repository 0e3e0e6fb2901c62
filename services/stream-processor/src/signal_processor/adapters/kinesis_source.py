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
  Records leave a GetRecords page at a time while the next page is fetched in a thread
  (`prefetch.Prefetched`), and the boundary is recorded when the read ends, before the task can
  end: a task's output counts only once it ends, so a task lost in between delivered nothing.
* Resharding: a closed shard read to its end is `finished`; its children start (TRIM_HORIZON)
  only once all their parents are finished, so per-key order is preserved.
* Expired iterators are re-acquired after the last record read; throttling is backed off with
  jitter; GetRecords calls are spaced to at most `maxCallsPerSecond` per shard.
* KPL-aggregated records are de-aggregated (sub-sequence numbers exposed).

Here: the shard reads and the retention check, and the Data Source around them. Its options,
clients and backoff are in `kinesis_client`, KPL de-aggregation in `kpl`, and the offset
arithmetic in `core.positions`. The reader is pickled to executors, so it holds only plain data
and creates boto3 clients lazily.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
from pyspark.sql.datasource import DataSource, DataSourceStreamReader, InputPartition
from pyspark.sql.types import StructType

from signal_common.aws import error_code
from signal_processor.adapters.kinesis_client import (
    KinesisSourceError,
    SourceOptions,
    call_with_backoff,
    decode_record,
    kinesis_client,
    list_all_shards,
    shard_reader,
)
from signal_processor.adapters.kpl import user_records
from signal_processor.adapters.prefetch import Prefetched
from signal_processor.adapters.progress import ProgressStore, progress_store
from signal_processor.core.positions import initial_positions, next_offset

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


class RetentionGapError(KinesisSourceError):
    """Records between the source's position and the stream's trim horizon may be gone."""


@dataclass
class ShardRead:
    """What one executor read from one shard for one batch."""

    user_records: int = 0
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


def shard_pages(
    client: Any,
    opts: SourceOptions,
    shard_id: str,
    position: dict[str, Any],
    *,
    boundary: dict[str, Any] | None,
    max_records: int,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> Generator[list[tuple[Any, ...]], None, ShardRead]:
    """Read one shard from `position`, a GetRecords page at a time: yields each page's rows and
    returns what was read (`ShardRead`), up to a recorded `boundary` or to
    where this read decides to stop (max records, caught up, time budget).

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
            if error_code(exc) != "ExpiredIteratorException":
                raise
            resume = {"after": result.last_seq} if result.last_seq else position
            log.info("shard iterator expired; re-acquiring", extra={"shard": shard_id})
            iterator = _iterator(client, opts, shard_id, resume)
            continue
        records = response.get("Records", [])
        if "MillisBehindLatest" in response:
            result.millis_behind = int(response["MillisBehindLatest"])
        page: list[tuple[Any, ...]] = []
        at_boundary = False
        for record in records:
            seq = record["SequenceNumber"]
            payload, arrival_us = decode_record(record)
            for data, key, sub in user_records(record, payload):
                page.append((data, opts.stream, shard_id, seq, sub, key, arrival_us))
            result.last_seq = seq
            result.last_arrival_ms = arrival_us // 1000
            result.kinesis_records += 1
            if boundary is not None and seq == boundary.get("last_seq"):
                at_boundary = True
                break
        result.user_records += len(page)
        if page:
            yield page
        if at_boundary:
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


def _record_batch(rows: list[tuple[Any, ...]], read_time_us: int) -> pa.RecordBatch:
    """Rows of `shard_pages` as a source batch (SOURCE_SCHEMA), every row read at one time."""
    columns = list(zip(*rows, strict=True))
    arrays = [pa.array(col, type=_ARROW_SCHEMA.field(i).type) for i, col in enumerate(columns)]
    read_time = pa.scalar(read_time_us, _ARROW_SCHEMA.field("read_time").type)
    arrays.append(pa.repeat(read_time, len(rows)))
    return pa.RecordBatch.from_arrays(arrays, schema=_ARROW_SCHEMA)


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
                "shards": initial_positions(
                    shards,
                    starting_position=self.opts.starting_position,
                    starting_timestamp_ms=self.opts.starting_timestamp_ms,
                    now_ms=now_ms,
                ),
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
        """The partition's records, a GetRecords page per Arrow batch, the next page fetched
        while this one is processed (`Prefetched`).

        A first attempt decides where the read ends and records that boundary once it has read
        to it; a replay reads to the recorded boundary. Rows leave before the boundary is
        recorded: nothing of a task's output is used before the task ends, and the task ends
        only after this generator, so a task that dies unrecorded has delivered nothing. If a
        concurrent attempt recorded first, this attempt delivers exactly the recorded records:
        it reads on to their boundary if they read further, and fails (Spark retries it, and
        the retry replays the boundary) if they read less than it already delivered.
        """
        store = self._store()
        key = f"boundaries/{partition.n}/{partition.shard_id}"
        boundary = store.get(key)
        client = shard_reader(self.opts)
        read_time_us = partition.read_time_ms * 1000

        def pages(
            position: dict[str, Any], recorded: dict[str, Any] | None
        ) -> Prefetched[list[tuple[Any, ...]], ShardRead]:
            return Prefetched(
                shard_pages(
                    client,
                    self.opts,
                    partition.shard_id,
                    position,
                    boundary=recorded,
                    max_records=partition.max_records,
                )
            )

        read = pages(partition.position, boundary)
        for rows in read:
            yield _record_batch(rows, read_time_us)
        if boundary is not None:
            return
        result = read.value
        decided = {
            "last_seq": result.last_seq,
            "last_arrival_ms": result.last_arrival_ms,
            "caught_up_ms": result.caught_up_ms,
            "kinesis_records": result.kinesis_records,
            "user_records": result.user_records,
            "closed": result.closed,
            "millis_behind": result.millis_behind,
        }
        stored = store.put_if_absent(key, decided)
        ours, theirs = result.last_seq, stored.get("last_seq")
        if stored == decided or ours == theirs:
            return
        # a concurrent attempt recorded a different boundary first
        if theirs is not None and (ours is None or int(theirs) > int(ours)):
            rest = pages({"after": ours} if ours else partition.position, stored)
            for rows in rest:
                yield _record_batch(rows, read_time_us)
            return
        raise KinesisSourceError(
            f"shard {partition.shard_id}, batch {partition.n}: a concurrent attempt of this task "
            f"recorded a shorter read (to {theirs}) than this attempt delivered (to {ours}); "
            "this attempt fails, and its retry reads the recorded records"
        )

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
