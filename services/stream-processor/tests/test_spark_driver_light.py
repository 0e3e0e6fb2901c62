"""The driver stays light: during a real streaming run, with the lake on S3 (moto), no batch's
records reach the driver. Every way a DataFrame hands rows to the driver is spied on; the only
rows it gets are the tasks' results, at most one per task of each step, and the lake the
executors wrote matches the oracle."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from processor_testdata import (
    MAX_BEHIND_FOR_DATED_DATA_S,
    assert_lake_matches_oracle,
    put_all,
    workload,
)
from pyspark.rdd import RDD

from signal_common.schema import EVENT_FIELDS
from signal_processor.adapters.lake_writer import LocalStorage, S3Storage
from signal_processor.adapters.partition_writer import RESULT_SCHEMA
from signal_processor.settings import ProcessorSettings
from signal_processor.wiring import start_query

PARTITIONS = 2
MERGE_TASKS = 3
# columns only a record-level DataFrame has (the validated batch, or anything derived from it)
RECORD_COLUMNS = {f.name for f in EVENT_FIELDS} | {"raw_payload", "dedup_key", "sequence_number"}
TO_DRIVER = ("collect", "toArrow", "toPandas", "toLocalIterator", "tail", "_collect_as_arrow")


class DriverSpy:
    """Records every call that brings a DataFrame's or an RDD's rows to the driver."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, frozenset[str], int]] = []  # (method, columns, rows)

    def wrap(self, name: str, method: Callable[..., Any]) -> Callable[..., Any]:
        def spied(df: Any, *args: Any, **kwargs: Any) -> Any:
            result = method(df, *args, **kwargs)
            rows = result.num_rows if hasattr(result, "num_rows") else len(result)
            columns = frozenset(df.columns) if hasattr(df, "columns") else frozenset({"<rdd>"})
            self.calls.append((name, columns, rows))
            return result

        return spied


def _rows_read(lake: S3Storage, root: str) -> int:
    """Records the job has read, by the lake's pipeline_batches on S3."""
    files = [pq.read_table(pa.BufferReader(lake.read_bytes(uri))) for uri in lake.list(root)]
    return sum(v or 0 for t in files for v in t["rows_in"].to_pylist())


def _copy_lake(lake: S3Storage, root: str, into: Path) -> Path:
    """The lake on S3 copied to a local directory (the oracle reads it with DuckDB)."""
    for uri in lake.list(root):
        LocalStorage().write_bytes(str(into / uri.removeprefix(root + "/")), lake.read_bytes(uri))
    return into


def test_no_record_reaches_the_driver_and_executors_write_the_lake_on_s3(
    spark: Any,
    kinesis_client: Any,
    kinesis_endpoint_url: str,
    moto_endpoint_url: str,
    make_stream: Callable[..., str],
    bucket: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stream = make_stream(shards=2)
    payloads, events, duplicates = workload(300, seed=3)
    put_all(kinesis_client, stream, payloads)
    settings = ProcessorSettings(
        stream_name=stream,
        kinesis_endpoint_url=kinesis_endpoint_url,
        s3_endpoint_url=moto_endpoint_url,
        lake_root=f"s3://{bucket}/lake",
        checkpoint_location=f"file://{tmp_path}/checkpoint",
        trigger_seconds=0.5,
        max_records_per_batch=200,
        shuffle_partitions=PARTITIONS,
        merge_tasks=MERGE_TASKS,
        max_event_behind_seconds=MAX_BEHIND_FOR_DATED_DATA_S,
    )
    lake = S3Storage(region="us-east-1", endpoint_url=moto_endpoint_url)
    spy = DriverSpy()
    frame_class = type(spark.range(1))
    for name in TO_DRIVER:
        monkeypatch.setattr(frame_class, name, spy.wrap(name, getattr(frame_class, name)))
    for name in ("collect", "toLocalIterator"):
        monkeypatch.setattr(RDD, name, spy.wrap(f"rdd.{name}", getattr(RDD, name)))

    query = start_query(spark, settings)
    deadline, seen = time.monotonic() + 480, 0  # a loaded 2-core machine: minutes
    try:
        while time.monotonic() < deadline and query.isActive and seen < len(payloads):
            time.sleep(1)
            seen = _rows_read(lake, f"{settings.lake_root}/pipeline_batches")
    finally:
        query.stop()
    monkeypatch.undo()
    assert query.exception() is None, query.exception()
    assert seen == len(payloads)

    assert spy.calls, "the batches' results reach the driver through a spied call"
    record_level = [(m, sorted(c & RECORD_COLUMNS)) for m, c, _ in spy.calls if c & RECORD_COLUMNS]
    assert not record_level, f"records collected to the driver: {record_level}"
    assert {c for _, c, _ in spy.calls} == {frozenset(RESULT_SCHEMA.names)}
    # a row per task of each step at most (the partitions', the merge tasks')
    assert max(rows for _, _, rows in spy.calls) <= PARTITIONS + MERGE_TASKS

    local = _copy_lake(lake, settings.lake_root, tmp_path / "lake")
    assert_lake_matches_oracle(str(local), events, duplicates)
    assert not list(local.glob("_batches/*/_tasks/*/*.json"))  # every batch's intents cleared
