"""The executor side of a batch, without Spark (its shuffle played by grouping rows by bucket):
per-partition partials merged by key bucket give the whole batch's tables, and task attempts
(failed, retried, of an earlier run) leave exactly one copy, on a local lake and on S3 (moto)."""

from __future__ import annotations

import datetime as dt
import json
import pickle
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from processor_testdata import MALFORMED, encode, make_event, source_batch

from signal_common.lake import EVENTS, KPI_TABLES, QUARANTINE
from signal_common.partials import device_estimate
from signal_common.quality import DEFAULT_BANDS
from signal_processor.adapters.lake_writer import (
    LakeWriter,
    LocalStorage,
    S3Storage,
    discard_uncommitted,
)
from signal_processor.adapters.partition_writer import (
    BatchResult,
    MergeTask,
    PartitionTask,
    ipc_bytes,
    ipc_table,
    merge_results,
)
from signal_processor.core import aggregates as agg
from signal_processor.core.validate import validate_batch

BATCH = 3
T0 = dt.datetime(2026, 11, 23, 10, 58, tzinfo=dt.UTC)  # windows on both sides of an hour


def _validated(first: int, n: int, *, malformed: int = 0) -> pa.Table:
    events = [
        make_event(i, event_time=(T0 + dt.timedelta(seconds=17 * i)).isoformat())
        for i in range(first, first + n)
    ]
    payloads = [encode(e) for e in events] + [raw for raw, _ in MALFORMED[:malformed]]
    return validate_batch(source_batch(payloads, T0 + dt.timedelta(minutes=30)))


@pytest.fixture(scope="module")
def partitions() -> list[pa.Table]:
    """One batch as three partitions: mixed, valid only, and invalid only."""
    return [
        _validated(0, 40, malformed=3),
        _validated(40, 25),
        _validated(0, 0, malformed=len(MALFORMED)).slice(3),
    ]


def _rows(task: PartitionTask, partitions: list[pa.Table]) -> list[dict[str, Any]]:
    """The first step's rows (every bucket's) of each partition."""
    return [r for k, records in enumerate(partitions) for r in task.process(records, k).to_pylist()]


def _run(task: PartitionTask, partitions: list[pa.Table]) -> BatchResult:
    """Both steps, as Spark runs them: the rows shuffled by bucket, a merge task a bucket."""
    by_bucket: dict[int, list[dict[str, Any]]] = {}
    for row in _rows(task, partitions):
        by_bucket.setdefault(row["bucket"], []).append(row)
    merge = MergeTask(task.writer, task.batch_id)
    merged = [merge.process(rows, bucket).to_pylist() for bucket, rows in sorted(by_bucket.items())]
    return merge_results([row for rows in merged for row in rows])


def _read(uris: list[str]) -> pa.Table:
    return pa.concat_tables([pq.read_table(uri.removeprefix("file://")) for uri in uris])


def test_merged_partition_results_equal_the_whole_batch(
    partitions: list[pa.Table], tmp_path: Path
) -> None:
    writer = LakeWriter(str(tmp_path), LocalStorage(), run_id="r-00000000000a")
    result = _run(PartitionTask(writer, BATCH, DEFAULT_BANDS, buckets=3), partitions)

    whole = pa.concat_tables(partitions)
    expected = agg.kpi_partials(whole, DEFAULT_BANDS, BATCH)
    for table in KPI_TABLES:  # sums, counts, band counts, minima, maxima: row for row
        # what the merge tasks wrote (one row per key: a key's rows meet in one bucket) and the
        # whole batch's partials, without the columns in the path or the lineage
        want = expected[table.name].drop_columns(["dt", "hour"])
        got = _read(result.files[table.name]).select(want.column_names)
        keys = [(c.name, "ascending") for c in table.data_columns if c.merge == "key"]
        got, want = got.sort_by(keys), want.sort_by(keys)
        # a sketch's bytes follow the order its coupons came in (a union of the partitions'
        # sketches lists them in another order): the same devices are the same estimate
        sketches = got.column_names.index("devices_hll")
        assert got.remove_column(sketches).equals(want.remove_column(sketches)), table.name
        assert [device_estimate(b) for b in got["devices_hll"].to_pylist()] == [
            device_estimate(b) for b in want["devices_hll"].to_pylist()
        ], table.name
    assert result.quality == agg.batch_quality(whole)
    assert result.quality.quarantined_by_reason == {r: 1 for _, r in MALFORMED}
    assert result.tasks == 3

    # the records are in the files the tasks returned, each exactly once
    read = {table.name: _read(result.files[table.name]) for table in (EVENTS, QUARANTINE)}
    assert sorted(read[EVENTS.name]["event_id"].to_pylist()) == sorted(
        agg.valid_events(whole)["event_id"].to_pylist()
    )
    assert sorted(read[QUARANTINE.name]["reason"].to_pylist()) == sorted(r for _, r in MALFORMED)
    assert set(read[EVENTS.name]["commit_seq"].to_pylist()) == {writer.seq(BATCH)}
    names = {
        uri.rsplit("/", 2)[-2] + "/" + uri.rsplit("/", 1)[-1] for uri in result.files["events"]
    }
    assert names == {
        f"hour={h}/part-r-00000000000a-{BATCH:012d}-{k:05d}.snappy.parquet"
        for h, k in [(10, 0), (11, 0), (11, 1)]
    }  # partition 0 spans two hours, partition 1 only the second; partition 2 has no events


def test_partials_cross_the_shuffle_compressed(partitions: list[pa.Table]) -> None:
    """What a partition task sends the merge is each KPI table's partials as compressed Arrow
    IPC: read back, the same table; in bytes, a fraction of the uncompressed stream (the
    histograms' zeros), which every byte would otherwise cross the shuffle as."""
    partials = agg.kpi_partials(pa.concat_tables(partitions), DEFAULT_BANDS, BATCH)
    sent = plain = 0
    for table in partials.values():
        blob = ipc_bytes(table)
        assert ipc_table(blob).equals(table)
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as stream:
            stream.write_table(table)
        sent, plain = sent + len(blob), plain + sink.getvalue().size
    assert sent < plain / 4


def test_what_the_driver_receives_does_not_grow_with_the_records(
    partitions: list[pa.Table], tmp_path: Path
) -> None:
    """Twenty times the records in the same windows and keys: the same file names and figures
    reach the driver, a few digits longer, and the merge tasks write as many partial rows."""
    task = PartitionTask(
        LakeWriter(str(tmp_path), LocalStorage(), run_id="r-00000000000a"),
        BATCH,
        DEFAULT_BANDS,
        buckets=2,
    )
    once = _run(task, partitions)
    once_rows = {t.name: _read(once.files[t.name]).num_rows for t in KPI_TABLES}
    many = _run(task, [pa.concat_tables([p] * 20) for p in partitions])
    assert many.quality.valid_rows == 20 * once.quality.valid_rows
    assert once.received_bytes <= many.received_bytes <= once.received_bytes * 1.02
    assert {t.name: _read(many.files[t.name]).num_rows for t in KPI_TABLES} == once_rows


def test_rows_straight_from_the_partitions_are_refused_by_the_driver(
    partitions: list[pa.Table], tmp_path: Path
) -> None:
    """Unmerged partials reaching the driver would be dropped there: it says so instead."""
    task = PartitionTask(
        LakeWriter(str(tmp_path), LocalStorage(), run_id="r-00000000000a"), BATCH, DEFAULT_BANDS
    )
    with pytest.raises(ValueError, match="unmerged"):
        merge_results(_rows(task, partitions))


def test_key_buckets_keep_a_key_in_one_bucket(partitions: list[pa.Table]) -> None:
    """Each key's rows of every partition land in the same bucket, whatever the partition."""
    for table in KPI_TABLES:
        seen: dict[tuple[Any, ...], int] = {}
        keys = [c.name for c in (*table.data_columns, *table.partition_keys) if c.merge == "key"]
        for records in partitions[:2]:
            rows = agg.kpi_partials(records, DEFAULT_BANDS, BATCH)[table.name]
            shares = agg.key_buckets(rows, table, 4)
            assert sum(s.num_rows for s in shares) == rows.num_rows
            for bucket, share in enumerate(shares):
                for key in zip(*(share[k].to_pylist() for k in keys), strict=True):
                    assert seen.setdefault(key, bucket) == bucket, (table.name, key)


def _lake_files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*.parquet")}


def test_task_attempts_leave_exactly_the_successful_files(
    partitions: list[pa.Table], tmp_path: Path
) -> None:
    storage, root = LocalStorage(), str(tmp_path)
    writer = LakeWriter(root, storage, run_id="r-00000000000a")
    task = PartitionTask(writer, BATCH, DEFAULT_BANDS)
    # attempts that did not count: one of partition 0 with more rows than the one that
    # succeeds, and one under a partition the successful job does not have (neither can happen
    # with a deterministic replay; the rule must hold anyway)
    task.process(pa.concat_tables(partitions[:2]), 0)
    task.process(partitions[0], 5)
    stray = _lake_files(tmp_path)
    result = _run(task, partitions)  # the retry, and the other partitions
    for table in (EVENTS, QUARANTINE, *KPI_TABLES):  # as BatchWriter records them
        writer.record_files(table.name, BATCH, result.files[table.name])
    keep = [uri for uris in result.files.values() for uri in uris]
    assert len(stray - _uris_relative(keep, tmp_path)) == 3  # partition 5: two hours, quarantine
    assert writer.delete_strays(BATCH, keep, known=result.intents) == 3
    # three partitions' intents and the merge task's
    assert len(list(tmp_path.glob("_batches/*/_tasks/*/*.json"))) == len(result.intents) == 4
    writer.clear_intents(result.intents)

    assert _lake_files(tmp_path) == _uris_relative(keep, tmp_path)
    assert not list(tmp_path.glob("_batches/*/_tasks/*/*.json"))  # intents cleared
    manifest = json.loads(
        (tmp_path / f"_batches/r-00000000000a/events/{BATCH:012d}.json").read_text()
    )
    assert manifest["files"] == sorted(result.files["events"])

    # a replay with fewer files replaces the manifest's files it no longer writes
    replay = _run(task, partitions[1:2])
    for table in (EVENTS, QUARANTINE, *KPI_TABLES):
        writer.record_files(table.name, BATCH, replay.files[table.name])
    replayed = [uri for uris in replay.files.values() for uri in uris]
    writer.delete_strays(BATCH, replayed, known=[])
    assert _lake_files(tmp_path) == _uris_relative(replayed, tmp_path)
    assert any("hour=10" in uri for uri in keep)  # the first attempt's partials of hour 10 went
    assert not any("hour=10" in uri for uri in replayed)


def _uris_relative(uris: list[str], root: Path) -> set[str]:
    return {str(Path(u.removeprefix("file://")).relative_to(root)) for u in uris}


def test_a_new_run_deletes_the_task_files_of_a_batch_never_recorded(
    partitions: list[pa.Table], tmp_path: Path
) -> None:
    """The driver died after the tasks wrote, before any manifest: only intents know the files."""
    storage, root = LocalStorage(), str(tmp_path)
    first = LakeWriter(root, storage, run_id="r-00000000000a")
    committed = _run(PartitionTask(first, 0, DEFAULT_BANDS), partitions[:1])
    for table in (EVENTS.name, QUARANTINE.name):
        first.record_files(table, 0, committed.files[table])
    first.commit(0, {"shards": {}, "finished": []})  # crashed before clearing batch 0's intents
    _rows(PartitionTask(first, 1, DEFAULT_BANDS), partitions[1:2])  # batch 1: never recorded
    batch_1 = _lake_files(tmp_path) - _uris_relative(
        [u for us in committed.files.values() for u in us], tmp_path
    )
    assert batch_1

    second = LakeWriter(root, storage, run_id="r-00000000000b")
    assert discard_uncommitted(storage, root, current_run=second.run_id) == len(batch_1)
    assert _lake_files(tmp_path) == _uris_relative(
        [u for us in committed.files.values() for u in us], tmp_path
    )
    assert not list(tmp_path.glob("_batches/*/_tasks/*/*.json"))


def test_tasks_write_to_s3_from_a_pickled_writer(
    partitions: list[pa.Table], s3: Any, bucket: str, moto_endpoint_url: str
) -> None:
    """What Spark ships to an executor: the task pickled, its S3 client made there on use."""
    storage = S3Storage(region="us-east-1", endpoint_url=moto_endpoint_url)
    writer = LakeWriter(f"s3://{bucket}/lake", storage, run_id="r-00000000000c")
    task = pickle.loads(pickle.dumps(PartitionTask(writer, BATCH, DEFAULT_BANDS, buckets=2)))
    task.process(pa.concat_tables(partitions[:2]), 0)  # an attempt that did not count
    result = _run(task, partitions)
    for table in (EVENTS.name, QUARANTINE.name):
        writer.record_files(table, BATCH, result.files[table])
    keep = [uri for uris in result.files.values() for uri in uris]
    writer.delete_strays(BATCH, keep, known=result.intents)
    writer.clear_intents(result.intents)

    listed = s3.list_objects_v2(Bucket=bucket, Prefix="lake/")["Contents"]
    data = {f"s3://{bucket}/{o['Key']}" for o in listed if o["Key"].endswith(".parquet")}
    assert data == set(keep)
    assert not [o for o in listed if "/_tasks/" in o["Key"]]
    body = s3.get_object(
        Bucket=bucket, Key=f"lake/_batches/r-00000000000c/events/{BATCH:012d}.json"
    )
    assert json.loads(body["Body"].read())["files"] == sorted(result.files["events"])
    events = sum(
        pq.read_table(pa.BufferReader(s3.get_object(Bucket=bucket, Key=k)["Body"].read())).num_rows
        for k in (u.removeprefix(f"s3://{bucket}/") for u in result.files["events"])
    )
    assert events == 65
