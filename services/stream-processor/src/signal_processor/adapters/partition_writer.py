"""One pass of a micro-batch on the executors: the tasks write the records and the merged KPI
partials, and send the driver only file names and figures.

`BatchWriter` (batch_writer.py) runs `run_partitions`: one Spark job over the validated,
deduplicated micro-batch, so the source read, validation, dedup and everything below run once.
1. Each task of the batch's partitions (`PartitionTask`, on the executor holding the partition):
   - gathers its partition's Arrow batches (the partition's records stay on that executor);
   - writes the partition's `events` and `quarantine` rows to the lake itself
     (`LakeWriter.write_partition`: files `part-<run>-<batch>-<partition>`, an intent first);
   - derives the partition's KPI partials and quality figures with the pure kernels of
     `core.aggregates`, the same functions a whole batch would run;
   - returns a row per key bucket (`core.aggregates.key_buckets`): bucket 0 carries the files
     it wrote and its figures, and each carries the partials whose keys hash to it, as Arrow IPC.
2. Spark shuffles those rows by bucket, bucket b to merge task b (`bucket_routes`). Each task of
   the merge (`MergeTask`) folds its bucket's partials into one row per window and key
   (`core.aggregates.merge_partials`), writes them as the KPI tables' files of the batch
   (`write_partition` again, named by the merge task's partition) and passes the first step's
   files and figures on, without the partials.
The driver collects what the merge returns: a row per task with file names and figures, a size
that follows the number of tasks, not of records, windows or keys. It records the files,
writes `pipeline_batches` and commits.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
from pyspark import TaskContext
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from signal_common.lake import EVENTS, KPI_TABLES, QUARANTINE
from signal_common.quality import QualityBands
from signal_processor.adapters.lake_writer import LakeWriter
from signal_processor.core import aggregates as agg

_KPI_NAMES = tuple(t.name for t in KPI_TABLES)
RESULT_SCHEMA = pa.schema(
    [
        pa.field("partition", pa.int32()),
        pa.field("bucket", pa.int32()),  # the key bucket of the row's partials
        pa.field("intent", pa.string()),
        pa.field("files", pa.string()),  # JSON: table -> the URIs the task wrote
        pa.field("quality", pa.string()),  # JSON: agg.quality_to_json
        pa.field("input_ms", pa.int64()),  # waiting for input: source read, validation, dedup
        pa.field("work_ms", pa.int64()),  # kernels and writes
        *(pa.field(name, pa.binary()) for name in _KPI_NAMES),  # partials, Arrow IPC
    ]
)
RESULT_DDL = ", ".join(
    [
        "partition int, bucket int, intent string, files string, quality string",
        "input_ms bigint, work_ms bigint",
        *(f"{name} binary" for name in _KPI_NAMES),
    ]
)


# The partials cross the merge's shuffle as Arrow IPC with zstd-compressed buffers. Their bulk is
# the signal histograms, 131 counts a row (the lake's layout, #24) and mostly zeros where a cell
# or hexagon has a few events: 50k benchmark events gave 11.3 MB of partials uncompressed, 1.1 MB
# compressed, for about 10 ms to write and 5 ms to read. Every byte is carried from the Python
# worker to the JVM, through the shuffle (a network hop on a cluster) and to the merge's worker.
_IPC_OPTIONS = pa.ipc.IpcWriteOptions(compression="zstd")


def ipc_bytes(table: pa.Table) -> bytes:
    """`table` as an Arrow IPC stream (zstd-compressed buffers; `ipc_table` reads it back)."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema, options=_IPC_OPTIONS) as stream:
        stream.write_table(table)
    return bytes(sink.getvalue().to_pybytes())


def ipc_table(data: bytes) -> pa.Table:
    return pa.ipc.open_stream(pa.py_buffer(data)).read_all()


@dataclass(frozen=True)
class PartitionTask:
    """The executor side of one batch (pickled to every task): `__call__` is mapInArrow's."""

    writer: LakeWriter
    batch_id: int
    bands: Mapping[str, QualityBands]
    buckets: int = 1

    def __call__(self, batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        started = time.monotonic()
        chunks = list(batches)  # pulling them runs the upstream: source read, validation, dedup
        input_ms = int((time.monotonic() - started) * 1000)
        if not chunks or not sum(len(c) for c in chunks):
            return
        context = TaskContext.get()
        partition = context.partitionId() if context is not None else 0
        yield self.process(pa.Table.from_batches(chunks), partition, input_ms=input_ms)

    def process(self, records: pa.Table, partition: int, *, input_ms: int = 0) -> pa.RecordBatch:
        """Write the partition's records and return its result rows: bucket 0 with the files and
        figures, every bucket with its share of the partials (a bucket with none is left out)."""
        started = time.monotonic()
        quality = agg.batch_quality(records)
        intent, files = self.writer.write_partition(
            {
                EVENTS.name: agg.events_table(records) if quality.valid_rows else None,
                QUARANTINE.name: (
                    agg.quarantine_table(records, self.batch_id)
                    if quality.quarantined_rows
                    else None
                ),
            },
            self.batch_id,
            partition,
        )
        partials = agg.kpi_partials(records, self.bands, self.batch_id)
        shares = {
            table.name: agg.key_buckets(partials[table.name], table, self.buckets)
            for table in KPI_TABLES
            if table.name in partials
        }
        rows: list[dict[str, Any]] = []
        for bucket in range(self.buckets):
            blobs = {
                name: ipc_bytes(parts[bucket]) if parts[bucket].num_rows else None
                for name, parts in shares.items()
            }
            if bucket and not any(blobs.values()):
                continue
            rows.append({"partition": partition, "bucket": bucket, **blobs})
        rows[0] |= {
            "intent": intent,
            "files": json.dumps(files),
            "quality": json.dumps(agg.quality_to_json(quality)),
            "input_ms": input_ms,
            "work_ms": int((time.monotonic() - started) * 1000),
        }
        return pa.RecordBatch.from_pylist(rows, schema=RESULT_SCHEMA)


@dataclass(frozen=True)
class MergeTask:
    """The executor side of a batch's second step (pickled to every task): the partials of the
    key buckets Spark routed to this task, merged and written; `__call__` is mapInArrow's."""

    writer: LakeWriter
    batch_id: int

    def __call__(self, batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        rows = pa.Table.from_batches(list(batches), schema=RESULT_SCHEMA).to_pylist()
        if not rows:
            return
        context = TaskContext.get()
        yield self.process(rows, context.partitionId() if context is not None else 0)

    def process(self, rows: list[dict[str, Any]], partition: int) -> pa.RecordBatch:
        """Merge and write the partials in `rows` (RESULT_SCHEMA as Python values) as this
        task's files of the KPI tables; return the rows' files and figures without their
        partials, and one row of its own for the files it wrote."""
        started = time.monotonic()
        merged = {}
        for table in KPI_TABLES:
            parts = [ipc_table(bytes(r[table.name])) for r in rows if r[table.name] is not None]
            if parts:
                merged[table.name] = agg.merge_partials(parts, table)
        intent, files = self.writer.write_partition(merged, self.batch_id, partition)
        out = [
            {k: v for k, v in r.items() if k not in _KPI_NAMES}
            for r in rows
            if r["quality"] is not None
        ]
        if intent is not None:
            out.append(
                {
                    "partition": partition,
                    "intent": intent,
                    "files": json.dumps(files),
                    "work_ms": int((time.monotonic() - started) * 1000),
                }
            )
        return pa.RecordBatch.from_pylist(out, schema=RESULT_SCHEMA)


@dataclass(frozen=True)
class BatchResult:
    """What the driver gets from the tasks of one batch: merged figures and the files written."""

    quality: agg.BatchQuality
    files: dict[str, list[str]]  # every table's, KPI tables included
    intents: list[str]
    tasks: int
    received_bytes: int
    input_ms: int
    work_ms: int


def merge_results(rows: list[dict[str, Any]]) -> BatchResult:
    """Fold the merge tasks' rows (RESULT_SCHEMA as Python values) into the batch's."""
    files: dict[str, list[str]] = {t.name: [] for t in (EVENTS, QUARANTINE, *KPI_TABLES)}
    qualities, received = [], 0
    for row in rows:
        received += sum(len(v) for v in row.values() if isinstance(v, str | bytes | bytearray))
        for table, uris in json.loads(row["files"] or "{}").items():
            files[table].extend(uris)
        if row["quality"] is not None:
            qualities.append(agg.quality_from_json(json.loads(row["quality"])))
    if any(row.get(name) is not None for row in rows for name in _KPI_NAMES):
        # rows straight from PartitionTask: their partials would be lost here
        raise ValueError("partials reached the driver unmerged: run MergeTask on them first")
    return BatchResult(
        quality=agg.merge_quality(qualities),
        files=files,
        intents=[row["intent"] for row in rows if row["intent"] is not None],
        tasks=len(qualities),
        received_bytes=received,
        input_ms=max((int(row["input_ms"] or 0) for row in rows), default=0),
        work_ms=max((int(row["work_ms"] or 0) for row in rows), default=0),
    )


_MASK = 0xFFFFFFFF


def _rotl(x: int, r: int) -> int:
    return ((x << r) | (x >> (32 - r))) & _MASK


def spark_hash_partition(value: int, partitions: int) -> int:
    """The partition Spark's hash partitioning (`repartition(n, column)`) gives an int `value`:
    pmod(Murmur3 x86_32 of the int with seed 42, n), Spark's `HashPartitioning` over
    `Murmur3Hash` (its `hash` function); tests/test_spark_merge_routing.py checks it against
    Spark."""
    k1 = _rotl((value & _MASK) * 0xCC9E2D51 & _MASK, 15) * 0x1B873593 & _MASK
    h1 = (_rotl(42 ^ k1, 13) * 5 + 0xE6546B64) & _MASK
    h1 ^= 4  # the input's length in bytes
    h1 = (h1 ^ (h1 >> 16)) * 0x85EBCA6B & _MASK
    h1 = (h1 ^ (h1 >> 13)) * 0xC2B2AE35 & _MASK
    h1 ^= h1 >> 16
    signed = h1 - (1 << 32) if h1 & 0x80000000 else h1
    return signed % partitions  # Python's % of a positive modulus is Spark's pmod


@functools.cache
def bucket_routes(buckets: int) -> tuple[int, ...]:
    """For each key bucket b, the smallest int that Spark's hash partitioning into `buckets`
    partitions sends to partition b, so that the merge's shuffle gives every merge task exactly
    one bucket. Hashing the bucket numbers themselves would not: into 4 partitions, buckets
    0-3 land in partitions 3, 3, 2, 3 (one task merged three quarters of the partials and two
    ran empty), and into 2 both land in partition 1. Which task merges a bucket never affects
    the result (a bucket's rows always meet in one task); only the balance depends on this."""
    routes: dict[int, int] = {}
    value = 0
    while len(routes) < buckets:
        routes.setdefault(spark_hash_partition(value, buckets), value)
        value += 1
    return tuple(routes[b] for b in range(buckets))


def route_column(buckets: int) -> Column:
    """The value the merge's shuffle partitions a result row by: its bucket's route."""
    routes = F.array(*(F.lit(v) for v in bucket_routes(buckets)))
    return F.element_at(routes, F.col("bucket") + 1)


def run_partitions(validated: DataFrame, task: PartitionTask) -> BatchResult:
    """Run `task` on every partition of the micro-batch, shuffle its partials by key bucket into
    `task.buckets` merge tasks, one bucket each (one Spark job), and fold what they return; the
    driver receives a small row per task: file names and figures."""
    merge = MergeTask(task.writer, task.batch_id)
    rows = (
        validated.mapInArrow(task, RESULT_DDL)
        .repartition(task.buckets, route_column(task.buckets))
        .mapInArrow(merge, RESULT_DDL)
        .collect()
    )
    return merge_results([row.asDict() for row in rows])
