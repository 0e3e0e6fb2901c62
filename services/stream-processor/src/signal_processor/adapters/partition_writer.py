"""One pass of a micro-batch on the executors: each task writes its partition's records and
sends the driver only aggregates.

`BatchWriter` (batch_writer.py) runs `run_partitions`: a single `mapInArrow` over the validated,
deduplicated micro-batch, so the source read, validation, dedup and everything below are one
Spark job and the batch is computed once. Each task (`PartitionTask`, on the executor holding
the partition):
- gathers its partition's Arrow batches (the partition's records stay on that executor);
- writes the partition's `events` and `quarantine` rows to the lake itself
  (`LakeWriter.write_partition`: files `part-<run>-<batch>-<partition>`, an intent first);
- derives the partition's KPI partials and quality figures with the pure kernels of
  `core.aggregates`, the same functions a whole batch would run;
- returns one row: the files it wrote, its figures and its partials as Arrow IPC, a size in
  O(windows x keys), whatever the number of records.
The driver collects those rows (one per partition), merges the partials and figures
(`core.aggregates.merge_partials`, `merge_quality`), writes the small tables and commits. No
record reaches the driver, so its memory does not grow with the batch.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
from pyspark import TaskContext
from pyspark.sql import DataFrame

from signal_common.lake import EVENTS, KPI_TABLES, QUARANTINE
from signal_common.quality import QualityBands
from signal_processor.adapters.lake_writer import LakeWriter
from signal_processor.core import aggregates as agg

_KPI_NAMES = tuple(t.name for t in KPI_TABLES)
RESULT_SCHEMA = pa.schema(
    [
        pa.field("partition", pa.int32()),
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
        "partition int, intent string, files string, quality string",
        "input_ms bigint, work_ms bigint",
        *(f"{name} binary" for name in _KPI_NAMES),
    ]
)


def ipc_bytes(table: pa.Table) -> bytes:
    """`table` as an Arrow IPC stream."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as stream:
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
        """Write the partition's records and return its result row."""
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
        row = {
            "partition": partition,
            "intent": intent,
            "files": json.dumps(files),
            "quality": json.dumps(agg.quality_to_json(quality)),
            "input_ms": input_ms,
            "work_ms": int((time.monotonic() - started) * 1000),
            **{name: ipc_bytes(partials[name]) if name in partials else None
               for name in _KPI_NAMES},
        }  # fmt: skip
        return pa.RecordBatch.from_pylist([row], schema=RESULT_SCHEMA)


@dataclass(frozen=True)
class BatchResult:
    """What the driver gets from the tasks of one batch: merged figures, partials and files."""

    quality: agg.BatchQuality
    partials: dict[str, pa.Table]
    files: dict[str, list[str]]
    intents: list[str]
    tasks: int
    received_bytes: int
    input_ms: int
    work_ms: int


def merge_results(rows: list[dict[str, Any]]) -> BatchResult:
    """Fold the tasks' result rows (RESULT_SCHEMA as Python values) into the batch's."""
    files: dict[str, list[str]] = {EVENTS.name: [], QUARANTINE.name: []}
    qualities, received = [], 0
    for row in rows:
        received += sum(len(v) for v in row.values() if isinstance(v, str | bytes | bytearray))
        for table, uris in json.loads(row["files"]).items():
            files[table].extend(uris)
        qualities.append(agg.quality_from_json(json.loads(row["quality"])))
    partials = {
        table.name: agg.merge_partials(
            [ipc_table(bytes(row[table.name])) for row in rows if row[table.name] is not None],
            table,
        )
        for table in KPI_TABLES
    }
    return BatchResult(
        quality=agg.merge_quality(qualities),
        partials=partials,
        files=files,
        intents=[row["intent"] for row in rows if row["intent"] is not None],
        tasks=len(rows),
        received_bytes=received,
        input_ms=max((int(row["input_ms"]) for row in rows), default=0),
        work_ms=max((int(row["work_ms"]) for row in rows), default=0),
    )


def run_partitions(validated: DataFrame, task: PartitionTask) -> BatchResult:
    """Run `task` on every partition of the micro-batch (one Spark job) and merge the results;
    the driver receives one small row per partition."""
    rows = validated.mapInArrow(task, RESULT_DDL).collect()
    return merge_results([row.asDict() for row in rows])
