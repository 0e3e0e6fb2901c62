"""The foreachBatch sink: each micro-batch's lake tables written and committed, exactly once."""

from __future__ import annotations

import datetime as dt
import logging
import os
import time
from collections.abc import Callable

import pyarrow as pa
from pyspark.sql import DataFrame

from signal_common.lake import (
    EVENTS,
    KPI_TABLES,
    PIPELINE_BATCHES,
    QUARANTINE,
    partition_values,
    table_arrow_schema,
)
from signal_common.quality import bands_with_overrides
from signal_processor.adapters.checkpoint import BatchContext
from signal_processor.adapters.lake_writer import LakeWriter
from signal_processor.adapters.metrics import MetricsPublisher
from signal_processor.adapters.partition_writer import BatchResult, PartitionTask, run_partitions
from signal_processor.settings import ProcessorSettings

log = logging.getLogger(__name__)


class BatchWriter:
    """foreachBatch sink: writes every lake table for one micro-batch, exactly once.

    The executors carry the records and the partials: one Spark job
    (`partition_writer.run_partitions`) runs the source read, validation and dedup; each task
    writes its partition's `events` and `quarantine` files and derives its KPI partials and
    quality figures; the partials are shuffled by key to `MERGE_TASKS` merge tasks, which write
    the KPI tables' files. The driver receives a small row per task
    (files written, figures), records the files, writes `pipeline_batches` and commits: its
    work and memory follow the number of tasks, not the records, windows or keys.
    """

    def __init__(
        self,
        settings: ProcessorSettings,
        writer: LakeWriter,
        *,
        context: Callable[[int], BatchContext],
        metrics: MetricsPublisher | None = None,
    ) -> None:
        self.settings = settings
        self.writer = writer
        self.bands = bands_with_overrides(settings.quality_band_overrides)
        self.context = context
        self.metrics = metrics

    def __call__(self, validated: DataFrame, batch_id: int) -> None:
        started = time.monotonic()
        buckets = self.settings.merge_tasks
        task = PartitionTask(self.writer, batch_id, self.bands, buckets=buckets)
        self.write_batch(run_partitions(validated, task), batch_id, started=started)

    def write_batch(self, result: BatchResult, batch_id: int, *, started: float) -> None:
        """Record what the tasks wrote, write the merged tables and commit the batch."""
        quality = result.quality
        w = self.writer
        for table in (EVENTS, QUARANTINE, *KPI_TABLES):
            # every table, so an idle batch still clears an earlier attempt's files
            w.record_files(table.name, batch_id, result.files.get(table.name, []))
        keep = [uri for uris in result.files.values() for uri in uris]
        w.delete_strays(batch_id, keep, known=result.intents)
        if self.settings.fault_after_write_batch == batch_id:
            log.error("fault injection: crashing after writing batch", extra={"batch_id": batch_id})
            os._exit(137)
        ctx = self.context(batch_id)
        now = dt.datetime.now(dt.UTC)
        day, hour = partition_values(now)
        accounted = quality.valid_rows + quality.quarantined_rows
        rows_in, late = ctx.rows_in, ctx.late_dropped()
        lag = ctx.millis_behind_latest()
        row = {
            "batch_id": batch_id,
            "batch_time": now,
            "rows_in": rows_in,
            "valid_rows": quality.valid_rows,
            "quarantined_rows": quality.quarantined_rows,
            "quarantined_by_reason": list(quality.quarantined_by_reason.items()),
            # what dedup removed: rows in, less rows out, less the rows it dropped as late
            "duplicates_removed": (
                rows_in - accounted - (late or 0) if rows_in is not None else None
            ),
            "max_lateness_s": quality.max_lateness_s,
            "max_event_time": quality.max_event_time,
            "arrival_watermark": ctx.watermark,
            "processing_ms": int((time.monotonic() - started) * 1000),
            "run_id": w.run_id,
            "late_dropped": late,
            "millis_behind_latest": lag,
            "source_positions": ctx.source_positions(),
            "dt": day,
            "hour": hour,
        }
        schema = table_arrow_schema(PIPELINE_BATCHES, with_partitions=True, with_lineage=False)
        w.write_arrow(pa.Table.from_pylist([row], schema=schema), "pipeline_batches", batch_id)
        resume = ctx.resume()
        if resume is None:
            raise ProcessorError(
                f"batch {batch_id}: the checkpoint has no offset for it; cannot commit it"
            )
        w.commit(batch_id, resume)
        w.clear_intents(result.intents)
        if late:
            log.error(
                "rows dropped as late by the dedup watermark",
                extra={"batch_id": batch_id, "rows": late},
            )
        if self.metrics is not None and lag is not None:
            try:
                self.metrics.consumer_lag(self.settings.stream_name, lag)
            except Exception:  # the batch is committed: a metric outage must not stop the stream
                log.exception(
                    "could not publish the consumer-lag metric", extra={"batch_id": batch_id}
                )
        log.info(
            "batch written",
            extra={
                "batch_id": batch_id,
                "run_id": w.run_id,
                "rows_in": rows_in,
                "valid": quality.valid_rows,
                "quarantined": quality.quarantined_rows,
                "duplicates_removed": row["duplicates_removed"],
                "millis_behind_latest": lag,
                "tasks": result.tasks,
                "driver_bytes": result.received_bytes,
                # per task, the longest: waiting for the upstream (pipelined in the same job),
                # and its own kernels and writes
                "read_validate_dedup_ms": result.input_ms,
                "executor_write_ms": result.work_ms,
                "ms": row["processing_ms"],
            },
        )


class ProcessorError(RuntimeError):
    """The job cannot go on (a missing offset, an unusable checkpoint or lake)."""
