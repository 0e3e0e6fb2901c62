"""The processor in operation: an outage backlog with skewed shards, a backlog across a shard
split, and a checkpoint reset. Each ends with every valid unique event in the lake exactly once,
duplicates counted as dedup removed them, and nothing dropped as late."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from processor_testdata import (
    MALFORMED,
    MAX_BEHIND_FOR_DATED_DATA_S,
    assert_lake_matches_oracle,
    encode,
    lake_frames,
    make_event,
    put_all,
)

from signal_processor.settings import ProcessorSettings
from signal_processor.wiring import start_query

HALF = 2**127  # a two-shard stream splits the hash key space here
HORIZON_S = 15


def _settings(stream: str, url: str, tmp_path: Path, **overrides: Any) -> ProcessorSettings:
    values: dict[str, Any] = {
        "stream_name": stream,
        "kinesis_endpoint_url": url,
        "lake_root": f"file://{tmp_path}/lake",
        "checkpoint_location": f"file://{tmp_path}/checkpoint",
        "trigger_seconds": 0.5,
        "shuffle_partitions": 2,
        # shrunk from 10 minutes so the test's arrivals span more than one dedup horizon
        "dedup_watermark": f"{HORIZON_S} seconds",
        "max_event_behind_seconds": MAX_BEHIND_FOR_DATED_DATA_S,
        **overrides,
    }
    return ProcessorSettings(**values)


def _put_on(client: Any, stream: str, payloads: list[bytes], hash_key: int) -> None:
    """Put records with an explicit hash key, i.e. on the shard that owns it."""
    for start in range(0, len(payloads), 500):
        records = [
            {"PartitionKey": "k", "ExplicitHashKey": str(hash_key), "Data": p}
            for p in payloads[start : start + 500]
        ]
        assert client.put_records(StreamName=stream, Records=records)["FailedRecordCount"] == 0


def _run_until(spark: Any, settings: ProcessorSettings, rows_in: int, timeout: float = 300) -> None:
    """Run the job until the lake accounts for `rows_in` records read, then stop it."""
    query = start_query(spark, settings)
    lake = settings.lake_root.removeprefix("file://")
    deadline, seen = time.monotonic() + timeout, -1
    try:
        while time.monotonic() < deadline and query.isActive:
            seen = _rows_read(lake)
            if seen >= rows_in:
                break
            time.sleep(0.5)
        # the lake is committed before foreachBatch returns, Spark's commit log after it: wait
        # for Spark's progress of the newest batch in the lake so stopping cannot cut it out
        newest = _newest_batch(lake)
        while (
            time.monotonic() < deadline
            and query.isActive
            and not any(p["batchId"] >= newest for p in query.recentProgress)
        ):
            time.sleep(0.2)
    finally:
        query.stop()
    assert query.exception() is None, query.exception()
    assert seen == rows_in, f"the job read {seen} of {rows_in} records in {timeout}s"


def _newest_batch(lake: str) -> int:
    """The newest batch id in the lake's pipeline_batches (-1 before the first batch)."""
    import duckdb

    if not any(Path(lake, "pipeline_batches").rglob("*.parquet")):
        return -1
    files = f"read_parquet('{lake}/pipeline_batches/**/*.parquet')"
    row = duckdb.connect().execute(f"SELECT coalesce(max(batch_id), -1) FROM {files}").fetchone()
    return int(row[0]) if row else -1


def _rows_read(lake: str) -> int:
    """Records the job has read, by the lake's pipeline_batches (-1 before the first batch)."""
    import duckdb

    if not any(Path(lake, "pipeline_batches").rglob("*.parquet")):
        return -1
    files = f"read_parquet('{lake}/pipeline_batches/**/*.parquet')"
    row = duckdb.connect().execute(f"SELECT coalesce(sum(rows_in), 0) FROM {files}").fetchone()
    return int(row[0]) if row else -1


def _events(first: int, n: int) -> list[dict[str, Any]]:
    return [make_event(i) for i in range(first, first + n)]


def _with_copies(events: list[dict[str, Any]], *, every: int, after: int) -> list[bytes]:
    """Payloads with a re-sent copy of every `every`-th event, `after` records behind its
    original on the same shard (as a producer retry lands), i.e. read within the horizon."""
    payloads = [encode(e) for e in events]
    for i in reversed(range(0, len(events), every)):
        payloads.insert(min(len(payloads), i + after), encode(events[i]))
    return payloads


def test_outage_backlog_on_a_busy_and_a_quiet_shard_loses_nothing(
    spark: Any,
    kinesis_client: Any,
    kinesis_endpoint_url: str,
    make_stream: Callable[..., str],
    tmp_path: Path,
) -> None:
    """Issue #13's measurement, scaled down: the quiet shard's newer arrivals once pushed the
    arrival-time watermark past the busy shard's unread backlog, which dedup then dropped."""
    stream = make_stream(shards=2)
    busy, quiet_early, quiet_late = _events(0, 1500), _events(5000, 30), _events(6000, 30)
    _put_on(kinesis_client, stream, _with_copies(busy, every=50, after=120), hash_key=0)
    _put_on(kinesis_client, stream, [encode(e) for e in quiet_early], hash_key=HALF)
    time.sleep(HORIZON_S + 1)  # the quiet shard's next arrivals come beyond the horizon
    malformed = [raw for raw, _ in MALFORMED]
    _put_on(kinesis_client, stream, [encode(e) for e in quiet_late] + malformed, hash_key=HALF)
    copies = len(range(0, len(busy), 50))
    total = len(busy) + copies + len(quiet_early) + len(quiet_late) + len(malformed)

    # the busy shard needs many batches: 150 records per shard per batch
    settings = _settings(stream, kinesis_endpoint_url, tmp_path, max_records_per_batch=300)
    _run_until(spark, settings, total)

    assert_lake_matches_oracle(f"{tmp_path}/lake", busy + quiet_early + quiet_late, copies)
    assert lake_frames(f"{tmp_path}/lake")["batches"] >= 10


def test_backlog_while_a_shard_splits_loses_nothing(
    spark: Any,
    kinesis_client: Any,
    kinesis_endpoint_url: str,
    make_stream: Callable[..., str],
    tmp_path: Path,
) -> None:
    """A backlog on one shard while the other splits and its children take newer records:
    the children's arrivals must not make the backlog 'late'."""
    stream = make_stream(shards=2)
    backlog, before, after = _events(0, 1200), _events(3000, 100), _events(4000, 300)
    _put_on(kinesis_client, stream, _with_copies(backlog, every=40, after=100), hash_key=HALF)
    _put_on(kinesis_client, stream, [encode(e) for e in before], hash_key=0)
    parent = min(
        kinesis_client.list_shards(StreamName=stream)["Shards"],
        key=lambda s: int(s["HashKeyRange"]["StartingHashKey"]),
    )
    kinesis_client.split_shard(
        StreamName=stream, ShardToSplit=parent["ShardId"], NewStartingHashKey=str(HALF // 2)
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        summary = kinesis_client.describe_stream_summary(StreamName=stream)
        if summary["StreamDescriptionSummary"]["StreamStatus"] == "ACTIVE":
            break
        time.sleep(0.2)
    time.sleep(HORIZON_S + 1)  # the children's records arrive beyond the horizon
    _put_on(kinesis_client, stream, [encode(e) for e in after[:150]], hash_key=1)
    _put_on(kinesis_client, stream, [encode(e) for e in after[150:]], hash_key=HALF // 2 + 1)
    copies = len(range(0, len(backlog), 40))
    total = len(backlog) + copies + len(before) + len(after)

    settings = _settings(stream, kinesis_endpoint_url, tmp_path, max_records_per_batch=300)
    _run_until(spark, settings, total)

    assert len(kinesis_client.list_shards(StreamName=stream)["Shards"]) == 4  # 2 + 2 children
    frames = lake_frames(f"{tmp_path}/lake")
    assert frames["events"] == (len(backlog) + len(before) + len(after),) * 2
    assert frames["duplicates_removed"] == copies
    assert frames["late_dropped"] == 0


def test_a_new_checkpoint_continues_where_the_lake_ends(
    spark: Any,
    kinesis_client: Any,
    kinesis_endpoint_url: str,
    make_stream: Callable[..., str],
    tmp_path: Path,
) -> None:
    """The checkpoint is deleted between two runs (a routine reset); the second run is told
    `starting_position=latest`, as in the issue's measurement, and must neither overwrite the
    first run's history nor skip what arrived while no job ran."""
    stream = make_stream(shards=2)
    first, second = _events(0, 400), _events(1000, 300)
    put_all(kinesis_client, stream, [encode(e) for e in first])
    settings = _settings(stream, kinesis_endpoint_url, tmp_path, max_records_per_batch=200)
    _run_until(spark, settings, len(first))
    runs_before = {p.name for p in (tmp_path / "lake" / "_commits").iterdir()}

    # a new checkpoint location (as after deleting it, or a recreated Glue job); the old one is
    # left alone because RocksDB's maintenance thread may still write there after the stop
    malformed = [raw for raw, _ in MALFORMED]
    put_all(kinesis_client, stream, [encode(e) for e in second] + malformed)
    latest = settings.model_copy(
        update={"starting_position": "latest", "checkpoint_location": f"file://{tmp_path}/cp-2"}
    )
    _run_until(spark, latest, len(first) + len(second) + len(malformed))

    runs_after = {p.name for p in (tmp_path / "lake" / "_commits").iterdir()}
    assert len(runs_before) == 1
    assert len(runs_after) == 2
    assert runs_before < runs_after
    assert_lake_matches_oracle(f"{tmp_path}/lake", first + second, 0)


def test_pipeline_figures_from_an_s3_checkpoint_and_the_lag_metric(
    spark: Any,
    kinesis_client: Any,
    kinesis_endpoint_url: str,
    moto_endpoint_url: str,
    make_stream: Callable[..., str],
    tmp_path: Path,
) -> None:
    """The batch figures read from a checkpoint on S3 (moto) equal those read locally, and the
    job publishes its consumer lag to CloudWatch (moto)."""
    import boto3
    import duckdb

    from signal_processor.adapters.checkpoint import checkpoint_batch_context
    from signal_processor.adapters.lake_writer import LocalStorage, S3Storage
    from signal_processor.adapters.progress import LocalProgressStore, S3ProgressStore

    stream = make_stream(shards=2)
    events = _events(0, 500)
    put_all(kinesis_client, stream, [encode(e) for e in events])
    settings = _settings(
        stream, kinesis_endpoint_url, tmp_path, max_records_per_batch=200,
        publish_metrics=True, cloudwatch_endpoint_url=moto_endpoint_url,
    )  # fmt: skip
    _run_until(spark, settings, len(events))

    s3 = boto3.client("s3", region_name="us-east-1", endpoint_url=moto_endpoint_url)
    bucket = f"checkpoints-{stream.lower()}"[:63]
    s3.create_bucket(Bucket=bucket)
    local = tmp_path / "checkpoint"
    for path in local.rglob("*"):
        if path.is_file():
            s3.upload_file(str(path), bucket, f"cp/{path.relative_to(local)}")
    # the batches Spark completed (a last offset may be planned but not run when the query stops)
    batch_ids = sorted(int(p.name) for p in (local / "commits").iterdir() if p.name.isdigit())
    figures = []
    for batch_id in batch_ids:
        from_disk = checkpoint_batch_context(
            LocalStorage(),
            f"file://{local}",
            LocalProgressStore(f"{local}/kinesis-source"),
            batch_id,
        )
        from_s3 = checkpoint_batch_context(
            S3Storage(region="us-east-1", endpoint_url=moto_endpoint_url),
            f"s3://{bucket}/cp",
            S3ProgressStore(
                f"s3://{bucket}/cp/kinesis-source",
                region="us-east-1",
                endpoint_url=moto_endpoint_url,
            ),
            batch_id,
        )
        assert from_s3 == from_disk
        figures.append(
            (
                from_s3.rows_in,
                from_s3.late_dropped(),
                from_s3.millis_behind_latest(),
                from_s3.resume(),
            )
        )
    # the source keeps the boundaries of its last 5 batches (older ones are never read again),
    # so after the run only those still have figures; each equals what the job wrote then
    files = f"read_parquet('{tmp_path}/lake/pipeline_batches/**/*.parquet')"
    written = dict(duckdb.connect().execute(f"SELECT batch_id, rows_in FROM {files}").fetchall())
    known = [(b, f) for b, f in zip(batch_ids, figures, strict=True) if f[0] is not None]
    assert len(known) >= 3
    for batch_id, (rows, late, _, resume) in known:
        assert rows == written[batch_id]
        assert late == 0
        assert resume
    assert any(lag is not None for _, (_, _, lag, _) in known)

    cloudwatch = boto3.client("cloudwatch", region_name="us-east-1", endpoint_url=moto_endpoint_url)
    metrics = cloudwatch.list_metrics(Namespace="SignalStream/StreamProcessor")["Metrics"]
    assert {"MetricName": "MillisBehindLatest", "Namespace": "SignalStream/StreamProcessor",
            "Dimensions": [{"Name": "Stream", "Value": stream}]} in metrics  # fmt: skip
