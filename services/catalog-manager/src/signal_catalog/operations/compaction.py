"""Compaction: fold each closed hour partition's files into one (the I/O around core.compaction)."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from signal_catalog.adapters.lake import Lake
from signal_catalog.core.compaction import (
    LakeFile,
    PartitionPlan,
    closed,
    compacted_parquet,
    plan_partition,
)
from signal_catalog.core.partitions import Partition
from signal_common.commits import committed_seq
from signal_common.lake import LakeTable, with_current_columns

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PartitionCompaction:
    """What one compaction pass did (or, in a dry run, would do) to one partition."""

    table: str
    partition: Partition
    files_before: int
    plan: PartitionPlan

    @property
    def files_after(self) -> int:
        """Data files left in the partition (a rewrite of an existing name counts once)."""
        return self.files_before + int(self.plan.write is not None) - len(self.plan.delete)


@dataclass
class CompactionResult:
    """Totals of one compaction pass."""

    committed_seq: int
    partitions: list[PartitionCompaction] = field(default_factory=list)
    open_partitions: int = 0  # not closed yet (younger than the grace period)

    @property
    def written(self) -> int:
        return sum(p.plan.write is not None for p in self.partitions)

    @property
    def deleted(self) -> int:
        return sum(len(p.plan.delete) for p in self.partitions)

    @property
    def pending_delete(self) -> int:
        return sum(p.plan.pending_delete for p in self.partitions)


def compaction_candidates(
    lake: Lake, tables: Sequence[LakeTable], *, now: dt.datetime, grace: dt.timedelta
) -> tuple[list[tuple[LakeTable, Partition]], int]:
    """Closed partitions of `tables` (oldest first), and how many are still open."""
    found: list[tuple[LakeTable, Partition]] = []
    still_open = 0
    for table in tables:
        for p in sorted(lake.partitions(table.name)):
            if closed(p.dt, p.hour, now=now, grace=grace):
                found.append((table, p))
            else:
                still_open += 1
    return found, still_open


def compact(
    lake: Lake,
    tables: Sequence[LakeTable],
    *,
    now: dt.datetime,
    grace: dt.timedelta,
    reader_grace: dt.timedelta,
    dry_run: bool = False,
    on_partition: Callable[[PartitionCompaction], None] | None = None,
    on_candidates: Callable[[int], None] | None = None,
) -> CompactionResult:
    """Compact every closed partition of `tables`: fold the committed rows into one file per
    partition, then delete what it replaces once older than `reader_grace`. Nothing is written
    or deleted in a dry run. Safe to interrupt and rerun at any point (core.compaction)."""
    lake.check()
    # the committed sequence is read before any file is listed: every row at or below it is
    # in a file that exists by now, and nothing the processor writes later is at or below it
    committed = committed_seq(lake.commit_heads())
    result = CompactionResult(committed)
    candidates, result.open_partitions = compaction_candidates(lake, tables, now=now, grace=grace)
    if on_candidates:
        on_candidates(len(candidates))
    for table, partition in candidates:
        files = lake.partition_files(table.name, partition)
        if not files or (len(files) == 1 and files[0].compacted_seq is not None):
            plan = PartitionPlan(None, 0, 0, 0, (), 0)  # already one compacted file
        else:
            plan = _compact_partition(
                lake,
                table,
                files,
                committed=committed,
                now=now,
                reader_grace=reader_grace,
                dry_run=dry_run,
            )
        report = PartitionCompaction(table.name, partition, len(files), plan)
        result.partitions.append(report)
        if on_partition:
            on_partition(report)
    return result


def _compact_partition(
    lake: Lake,
    table: LakeTable,
    files: Sequence[LakeFile],
    *,
    committed: int,
    now: dt.datetime,
    reader_grace: dt.timedelta,
    dry_run: bool,
) -> PartitionPlan:
    # files older than a column read it as null: folds keep it unknown (signal_common.partials)
    parts = [with_current_columns(table, lake.read_table(f.uri)) for f in files]
    seqs = {
        f.uri: int(pc.max(part["commit_seq"]).as_py() or 0)
        for f, part in zip(files, parts, strict=True)
        if f.compacted_seq is None and part.num_rows
    }
    rows = pa.concat_tables(parts)
    plan, data = plan_partition(
        table,
        files,
        rows,
        seqs,
        committed_seq=committed,
        now=now,
        reader_grace=reader_grace,
    )
    if dry_run:
        return plan
    if data is not None and plan.write is not None:
        directory = files[0].uri.rsplit("/", 1)[0]
        lake.write_file(f"{directory}/{plan.write}", compacted_parquet(table, data))
        log.info(
            "partition compacted",
            extra={"table": table.name, "file": plan.write, "rows": plan.rows_out},
        )
    for uri in plan.delete:  # only after the compacted file is in place
        lake.delete(uri)
    return plan
