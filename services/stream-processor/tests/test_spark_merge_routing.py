"""The merge's shuffle gives every merge task exactly one key bucket, on Spark itself.

`repartition(n, "bucket")` hashes the bucket numbers (pmod(Murmur3, n)): into 4 partitions,
buckets 0-3 land in 3, 3, 2, 3, so one merge task merged three quarters of a batch's partials
while two ran empty. The shuffle now partitions by each bucket's route (`bucket_routes`), which
these tests check against Spark's own partitioning."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from processor_testdata import encode, make_event, source_batch
from pyspark.sql import functions as F

from signal_common.commits import part_file_name
from signal_common.lake import KPI_TABLES
from signal_common.quality import DEFAULT_BANDS
from signal_processor.adapters.lake_writer import LakeWriter, LocalStorage
from signal_processor.adapters.partition_writer import (
    PartitionTask,
    bucket_routes,
    route_column,
    run_partitions,
    spark_hash_partition,
)
from signal_processor.core.validate import validate_batch

COUNTS = (1, 2, 3, 4, 5, 8, 16, 48, 144)


def test_the_partition_of_an_int_is_the_one_spark_computes(spark: Any) -> None:
    values = [*range(-200, 200), 2**31 - 1, -(2**31), 123_456_789]
    frame = spark.createDataFrame([(v,) for v in values], "v int")
    for n in COUNTS:
        rows = frame.select("v", F.pmod(F.hash("v"), F.lit(n)).alias("p")).collect()
        assert {r.v: spark_hash_partition(r.v, n) for r in rows} == {r.v: r.p for r in rows}, n


def test_every_merge_task_gets_exactly_one_bucket(spark: Any) -> None:
    for n in COUNTS:
        buckets = spark.createDataFrame([(b,) for b in range(n) for _ in range(3)], "bucket int")
        routed = buckets.repartition(n, route_column(n)).select(
            "bucket", F.spark_partition_id().alias("task")
        )
        assert {(r.bucket, r.task) for r in routed.collect()} == {(b, b) for b in range(n)}, n
        assert len(set(bucket_routes(n))) == n
    # what the buckets' own numbers give (the old shuffle): tasks 2 and 3 of 4 got them all
    plain = buckets_by_task(spark, 4)
    assert plain == {2: [2], 3: [0, 1, 3]}


def buckets_by_task(spark: Any, n: int) -> dict[int, list[int]]:
    frame = spark.createDataFrame([(b,) for b in range(n)], "bucket int").repartition(n, "bucket")
    tasks: dict[int, list[int]] = {}
    for row in frame.select("bucket", F.spark_partition_id().alias("task")).collect():
        tasks.setdefault(row.task, []).append(row.bucket)
    return {task: sorted(b) for task, b in sorted(tasks.items())}


def test_a_batch_is_merged_and_written_by_every_merge_task(spark: Any, tmp_path: Path) -> None:
    t0 = dt.datetime(2026, 11, 23, 10, 58, tzinfo=dt.UTC)
    events = [
        make_event(i, event_time=(t0 + dt.timedelta(seconds=7 * i)).isoformat()) for i in range(400)
    ]
    arrival = t0 + dt.timedelta(hours=1)
    validated = validate_batch(source_batch([encode(e) for e in events], arrival))
    frame = spark.createDataFrame(validated).repartition(2)
    root = f"file://{tmp_path}/lake"
    writer = LakeWriter(root, LocalStorage(), run_id="r1")
    tasks = 4
    result = run_partitions(frame, PartitionTask(writer, 7, DEFAULT_BANDS, buckets=tasks))
    assert result.quality.valid_rows == len(events)
    for table in KPI_TABLES:
        written = {uri.rsplit("/", 1)[-1] for uri in result.files[table.name]}
        # one file per merge task and hour the batch spans: each of the 4 tasks wrote one
        by_task = {
            k for k in range(tasks) for name in written if name == part_file_name("r1", 7, k)
        }
        assert by_task == set(range(tasks)), (table.name, sorted(written))
