"""The Kinesis source against a real kinesalite: batches, replay, restart, resharding, faults."""

from __future__ import annotations

import datetime as dt
import itertools
import time
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from signal_processor.adapters.kinesis_client import ShardReader, SourceOptions, decode_record
from signal_processor.adapters.kinesis_source import KinesisStreamReader, ShardRead, shard_pages


def read_all(pages: Generator[list[tuple[Any, ...]], None, ShardRead]) -> list[tuple[Any, ...]]:
    """Every row `shard_pages` yielded, its pages joined."""
    return [row for page in pages for row in page]


def _put(client: Any, stream: str, keys_and_data: list[tuple[str, bytes]]) -> list[str]:
    sequence_numbers = []
    for start in range(0, len(keys_and_data), 500):
        chunk = keys_and_data[start : start + 500]
        response = client.put_records(
            StreamName=stream, Records=[{"PartitionKey": k, "Data": d} for k, d in chunk]
        )
        assert response["FailedRecordCount"] == 0
        sequence_numbers += [r["SequenceNumber"] for r in response["Records"]]
    return sequence_numbers


def _reader(url: str, stream: str, progress: Path, **options: str) -> KinesisStreamReader:
    raw = {"streamName": stream, "endpointUrl": url, "progressLocation": str(progress)}
    raw.update(options)
    return KinesisStreamReader(SourceOptions.parse({k.lower(): v for k, v in raw.items()}))


def _run_batch(
    reader: KinesisStreamReader, start: dict[str, Any], end: dict[str, Any]
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for partition in reader.partitions(start, end):
        for batch in reader.read(partition):  # type: ignore[arg-type]
            rows += batch.to_pylist()
    return rows


def _drain(
    reader: KinesisStreamReader, start: dict[str, Any], batches: int
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Plan and run batches like Spark's micro-batch loop; return rows and the last offset."""
    rows: list[dict[str, Any]] = []
    for _ in range(batches):
        end = reader.latestOffset()
        if end == start:
            continue
        rows += _run_batch(reader, start, end)
        reader.commit(end)
        start = end
    return rows, start


def test_batches_read_every_record_once_within_the_limit(
    kinesis_client: Any, kinesis_endpoint_url: str, make_stream: Callable[..., str], tmp_path: Path
) -> None:
    stream = make_stream(shards=2)
    sent = _put(kinesis_client, stream, [(f"k{i % 13}", f"r{i}".encode()) for i in range(300)])
    reader = _reader(kinesis_endpoint_url, stream, tmp_path / "p", maxRecordsPerBatch="100")
    start = reader.initialOffset()
    sizes = []
    rows: list[dict[str, Any]] = []
    for _ in range(8):
        end = reader.latestOffset()
        batch = _run_batch(reader, start, end)
        sizes.append(len(batch))
        rows += batch
        start = end
    assert max(sizes) <= 100  # 50 per shard per batch
    assert sorted(r["sequence_number"] for r in rows) == sorted(sent)
    assert sorted(r["data"] for r in rows) == sorted(f"r{i}".encode() for i in range(300))
    assert all(r["stream"] == stream and r["arrival_time"] is not None for r in rows)
    # per shard, records come in sequence order
    for shard in {r["shard_id"] for r in rows}:
        seqs = [int(r["sequence_number"]) for r in rows if r["shard_id"] == shard]
        assert seqs == sorted(seqs)


def test_a_replayed_batch_reads_exactly_the_same_records(
    kinesis_client: Any, kinesis_endpoint_url: str, make_stream: Callable[..., str], tmp_path: Path
) -> None:
    stream = make_stream(shards=1)
    _put(kinesis_client, stream, [("k", f"a{i}".encode()) for i in range(40)])
    reader = _reader(kinesis_endpoint_url, stream, tmp_path / "p")
    start = reader.initialOffset()
    end = reader.latestOffset()
    first = _run_batch(reader, start, end)
    _put(kinesis_client, stream, [("k", f"b{i}".encode()) for i in range(25)])
    replay = _run_batch(reader, start, end)  # the same batch again (a retried task / restart)
    assert [r["sequence_number"] for r in replay] == [r["sequence_number"] for r in first]
    assert len(first) == 40
    nxt = reader.latestOffset()
    assert [r["data"] for r in _run_batch(reader, end, nxt)] == [
        f"b{i}".encode() for i in range(25)
    ]


def test_restart_resumes_from_the_progress_log_without_loss_or_repeat(
    kinesis_client: Any, kinesis_endpoint_url: str, make_stream: Callable[..., str], tmp_path: Path
) -> None:
    stream = make_stream(shards=2)
    _put(kinesis_client, stream, [(f"k{i}", f"x{i}".encode()) for i in range(120)])
    first_reader = _reader(kinesis_endpoint_url, stream, tmp_path / "p", maxRecordsPerBatch="60")
    rows, offset = _drain(first_reader, first_reader.initialOffset(), batches=1)
    assert 0 < len(rows) < 120
    _put(kinesis_client, stream, [(f"k{i}", f"y{i}".encode()) for i in range(50)])
    # a new process: Spark restores `offset` from its checkpoint, the source its progress log
    restarted = _reader(kinesis_endpoint_url, stream, tmp_path / "p", maxRecordsPerBatch="60")
    more, _ = _drain(restarted, offset, batches=6)
    data = sorted(r["data"] for r in rows + more)
    assert data == sorted(
        [f"x{i}".encode() for i in range(120)] + [f"y{i}".encode() for i in range(50)]
    )


def test_shard_split_reads_parent_to_its_end_before_children(
    kinesis_client: Any, kinesis_endpoint_url: str, make_stream: Callable[..., str], tmp_path: Path
) -> None:
    stream = make_stream(shards=1)
    before = [("same-key", f"before-{i}".encode()) for i in range(30)]
    _put(kinesis_client, stream, before)
    reader = _reader(kinesis_endpoint_url, stream, tmp_path / "p", maxRecordsPerBatch="10")
    rows, offset = _drain(reader, reader.initialOffset(), batches=1)
    parent = kinesis_client.list_shards(StreamName=stream)["Shards"][0]
    middle = (
        int(parent["HashKeyRange"]["StartingHashKey"])
        + int(parent["HashKeyRange"]["EndingHashKey"])
    ) // 2
    kinesis_client.split_shard(
        StreamName=stream, ShardToSplit=parent["ShardId"], NewStartingHashKey=str(middle)
    )
    deadline = time.monotonic() + 10
    while (
        kinesis_client.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"][
            "StreamStatus"
        ]
        != "ACTIVE"
    ):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    after = [("same-key", f"after-{i}".encode()) for i in range(30)]
    _put(kinesis_client, stream, after)
    more, final = _drain(reader, offset, batches=12)
    data = [r["data"] for r in rows + more]
    # nothing lost or repeated, and for one key every record before the split precedes every after
    assert sorted(data) == sorted(d for _, d in before + after)
    assert data.index(b"after-0") > max(data.index(d) for _, d in before)
    assert parent["ShardId"] in final["finished"]
    assert len(final["shards"]) == 2


class _FaultyClient:
    """A real ShardReader whose get_records fails with the given error codes first."""

    def __init__(self, client: Any, errors: list[str]) -> None:
        self._client, self._errors, self.calls = client, list(errors), 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def get_records(self, **kwargs: Any) -> Any:
        self.calls += 1
        if self._errors:
            code = self._errors.pop(0)
            raise ClientError({"Error": {"Code": code, "Message": "injected"}}, "GetRecords")
        return self._client.get_records(**kwargs)


@pytest.mark.parametrize(
    "errors",
    [["ExpiredIteratorException"], ["ProvisionedThroughputExceededException"] * 3],
)
def test_expired_iterators_and_throttling_are_survived(
    kinesis_client: Any,
    kinesis_endpoint_url: str,
    make_stream: Callable[..., str],
    errors: list[str],
) -> None:
    stream = make_stream(shards=1)
    _put(kinesis_client, stream, [("k", f"z{i}".encode()) for i in range(20)])
    shard_id = kinesis_client.list_shards(StreamName=stream)["Shards"][0]["ShardId"]
    opts = SourceOptions(
        stream=stream, progress_location="unused", endpoint_url=kinesis_endpoint_url
    )
    sleeps: list[float] = []
    faulty = _FaultyClient(ShardReader(opts), errors)
    rows = read_all(shard_pages(
        faulty, opts, shard_id, {"at": "TRIM_HORIZON"}, boundary=None, max_records=1000,
        sleep=sleeps.append,
    ))  # fmt: skip
    assert [row[0] for row in rows] == [f"z{i}".encode() for i in range(20)]
    assert faulty.calls > len(errors)
    if errors[0].startswith("Provisioned"):
        backoffs = [s for s in sleeps if s > 0.04]
        assert len(backoffs) >= 3  # jittered exponential backoff between throttled calls


def test_get_records_calls_are_spaced_per_shard(
    kinesis_client: Any, kinesis_endpoint_url: str, make_stream: Callable[..., str]
) -> None:
    stream = make_stream(shards=1)
    _put(kinesis_client, stream, [("k", b"x")] * 50)
    shard_id = kinesis_client.list_shards(StreamName=stream)["Shards"][0]["ShardId"]
    opts = SourceOptions(
        stream=stream, progress_location="unused", endpoint_url=kinesis_endpoint_url,
        get_records_limit=10, max_calls_per_second=5.0,
    )  # fmt: skip
    calls: list[float] = []
    faulty = _FaultyClient(ShardReader(opts), [])
    original = faulty.get_records

    def timed(**kwargs: Any) -> Any:
        calls.append(time.monotonic())
        return original(**kwargs)

    faulty.get_records = timed  # type: ignore[method-assign]
    read_all(
        shard_pages(faulty, opts, shard_id, {"at": "TRIM_HORIZON"}, boundary=None, max_records=50)
    )
    gaps = [b - a for a, b in itertools.pairwise(calls)]
    assert len(calls) >= 5
    assert min(gaps) >= 0.19  # at most 5 GetRecords calls per second per shard


def test_kpl_aggregated_records_are_deaggregated(
    kinesis_client: Any, kinesis_endpoint_url: str, make_stream: Callable[..., str], tmp_path: Path
) -> None:
    from aws_kinesis_agg.aggregator import RecordAggregator

    stream = make_stream(shards=1)
    aggregator = RecordAggregator()
    for i in range(5):
        aggregator.add_user_record(f"pk{i}", f"user-{i}".encode())
    key, _, data = aggregator.clear_and_get().get_contents()
    _put(kinesis_client, stream, [(key, data), ("plain", b"not-aggregated")])
    reader = _reader(kinesis_endpoint_url, stream, tmp_path / "p")
    rows, _ = _drain(reader, reader.initialOffset(), batches=2)
    assert [r["data"] for r in rows] == [f"user-{i}".encode() for i in range(5)] + [
        b"not-aggregated"
    ]
    assert [r["sub_sequence_number"] for r in rows[:5]] == [0, 1, 2, 3, 4]
    assert [r["partition_key"] for r in rows[:5]] == [f"pk{i}" for i in range(5)]
    assert len({r["sequence_number"] for r in rows[:5]}) == 1


def test_starting_positions_latest_and_at_timestamp(
    kinesis_client: Any, kinesis_endpoint_url: str, make_stream: Callable[..., str], tmp_path: Path
) -> None:
    stream = make_stream(shards=1)
    _put(kinesis_client, stream, [("k", b"old")])
    time.sleep(0.05)
    cut = dt.datetime.now(dt.UTC)
    time.sleep(0.05)
    latest = _reader(kinesis_endpoint_url, stream, tmp_path / "latest", startingPosition="latest")
    latest_start = latest.initialOffset()
    _put(kinesis_client, stream, [("k", b"new")])
    rows, _ = _drain(latest, latest_start, batches=2)
    assert [r["data"] for r in rows] == [b"new"]
    at = _reader(
        kinesis_endpoint_url, stream, tmp_path / "at",
        startingPosition="at_timestamp", startingTimestamp=cut.isoformat(),
    )  # fmt: skip
    rows, _ = _drain(at, at.initialOffset(), batches=2)
    assert [r["data"] for r in rows] == [b"new"]


def test_bad_options_are_explained() -> None:
    from signal_processor.adapters.kinesis_client import KinesisSourceError

    with pytest.raises(KinesisSourceError, match="streamName is required"):
        SourceOptions.parse({"progresslocation": "/tmp/x"})
    with pytest.raises(KinesisSourceError, match="startingPosition must be"):
        SourceOptions.parse(
            {"streamname": "s", "progresslocation": "/x", "startingposition": "now"}
        )


def test_shard_reader_returns_what_boto3_returns(
    kinesis_client: Any, kinesis_endpoint_url: str, make_stream: Callable[..., str]
) -> None:
    stream = make_stream(shards=1)
    payloads = [b"plain", "ünïcode ✓".encode(), bytes(range(256)), b"{}"]
    _put(kinesis_client, stream, [(f"key-{i}", p) for i, p in enumerate(payloads)])
    shard_id = kinesis_client.list_shards(StreamName=stream)["Shards"][0]["ShardId"]
    reader = ShardReader(
        SourceOptions(stream=stream, progress_location="unused", endpoint_url=kinesis_endpoint_url)
    )

    def iterator(client: Any) -> str:
        return str(
            client.get_shard_iterator(
                StreamName=stream, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON"
            )["ShardIterator"]
        )

    ours = reader.get_records(ShardIterator=iterator(reader), Limit=100)
    theirs = kinesis_client.get_records(ShardIterator=iterator(kinesis_client), Limit=100)
    assert ours["MillisBehindLatest"] == theirs["MillisBehindLatest"]
    assert ours["NextShardIterator"]
    decoded = [decode_record(r) for r in ours["Records"]]
    assert [d for d, _ in decoded] == [r["Data"] for r in theirs["Records"]] == payloads
    assert [r["SequenceNumber"] for r in ours["Records"]] == [
        r["SequenceNumber"] for r in theirs["Records"]
    ]
    assert [r["PartitionKey"] for r in ours["Records"]] == [f"key-{i}" for i in range(4)]
    assert [us for _, us in decoded] == [
        int(r["ApproximateArrivalTimestamp"].timestamp() * 1000) * 1000 for r in theirs["Records"]
    ]


def test_shard_reader_raises_the_service_error_code_like_boto3(
    kinesis_client: Any, kinesis_endpoint_url: str
) -> None:
    reader = ShardReader(
        SourceOptions(stream="s", progress_location="unused", endpoint_url=kinesis_endpoint_url)
    )
    bad = "AAAAAAAAAAF" + "x" * 100
    with pytest.raises(ClientError) as theirs:
        kinesis_client.get_records(ShardIterator=bad, Limit=10)
    with pytest.raises(ClientError) as ours:
        reader.get_records(ShardIterator=bad, Limit=10)
    assert ours.value.response["Error"]["Code"] == theirs.value.response["Error"]["Code"]
    assert ours.value.response["Error"]["Message"]
    assert ours.value.operation_name == "GetRecords"


def test_shard_reader_without_credentials_says_so(
    kinesis_endpoint_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from botocore.exceptions import NoCredentialsError

    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    reader = ShardReader(
        SourceOptions(stream="s", progress_location="unused", endpoint_url=kinesis_endpoint_url)
    )
    with pytest.raises(NoCredentialsError):
        reader.get_records(ShardIterator="x", Limit=1)


class _LateStore:
    """The progress store as an attempt sees it when a concurrent attempt records its boundary
    between this attempt's look (`get`: nothing yet) and its own record (`put_if_absent`)."""

    def __init__(self, store: Any) -> None:
        self.store = store

    def get(self, key: str) -> Any:
        return None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


def _one_partition(reader: KinesisStreamReader, max_records: int) -> Any:
    [partition] = reader.partitions(reader.initialOffset(), reader.latestOffset())
    partition.max_records = max_records
    return partition


@pytest.mark.parametrize(("theirs", "ours"), [(25, 10), (10, 10)])
def test_an_attempt_that_loses_the_boundary_delivers_exactly_the_recorded_records(
    kinesis_client: Any,
    kinesis_endpoint_url: str,
    make_stream: Callable[..., str],
    tmp_path: Path,
    theirs: int,
    ours: int,
) -> None:
    stream = make_stream(shards=1)
    sent = _put(kinesis_client, stream, [("k", f"r{i}".encode()) for i in range(40)])
    reader = _reader(kinesis_endpoint_url, stream, tmp_path / "p", getRecordsLimit="4")
    partition = _one_partition(reader, theirs)
    first = [r for b in reader.read(partition) for r in b.to_pylist()]  # records its boundary
    assert [r["sequence_number"] for r in first] == sent[:theirs]

    late = _reader(kinesis_endpoint_url, stream, tmp_path / "p", getRecordsLimit="4")
    late._store = lambda: _LateStore(reader._store())  # type: ignore[method-assign]
    partition.max_records = ours  # this attempt alone would stop at `ours`
    batches = list(late.read(partition))
    assert len(batches) > 1  # a page at a time
    assert [r["sequence_number"] for b in batches for r in b.to_pylist()] == sent[:theirs]


def test_an_attempt_that_delivered_more_than_the_recorded_boundary_fails(
    kinesis_client: Any, kinesis_endpoint_url: str, make_stream: Callable[..., str], tmp_path: Path
) -> None:
    from signal_processor.adapters.kinesis_client import KinesisSourceError

    stream = make_stream(shards=1)
    _put(kinesis_client, stream, [("k", f"r{i}".encode()) for i in range(40)])
    reader = _reader(kinesis_endpoint_url, stream, tmp_path / "p")
    partition = _one_partition(reader, 5)
    assert sum(len(b) for b in reader.read(partition)) == 5  # the recorded boundary: 5 records

    late = _reader(kinesis_endpoint_url, stream, tmp_path / "p")
    late._store = lambda: _LateStore(reader._store())  # type: ignore[method-assign]
    partition.max_records = 20
    with pytest.raises(KinesisSourceError, match="shorter read"):
        list(late.read(partition))
    # the retry finds the boundary and replays exactly the recorded records
    assert sum(len(b) for b in reader.read(partition)) == 5
