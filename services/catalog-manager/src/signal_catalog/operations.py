"""What the CLI and the Lambda do: sync, watch, event, crawlers, drift, validate, compact.

Each operation takes its adapters (catalog, lake, query engine) as arguments, so tests and entry
points wire them the same way.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from signal_catalog.adapters.glue import GlueCatalog
from signal_catalog.adapters.lake import Lake
from signal_catalog.adapters.query import QueryEngine, SmokeResult
from signal_catalog.core.compaction import (
    LakeFile,
    PartitionPlan,
    closed,
    compacted_parquet,
    plan_partition,
)
from signal_catalog.core.crawlers import (
    CRAWLER_PREFIX,
    CatalogSnapshot,
    crawler_definition,
    crawler_name,
    definition_differs,
    snapshot_changes,
)
from signal_catalog.core.drift import DriftFinding, catalog_findings, file_findings
from signal_catalog.core.partitions import (
    Partition,
    event_partitions,
    missing_partitions,
    partition_input,
)
from signal_catalog.core.plan import Action, plan_table
from signal_catalog.core.tables import table_input
from signal_catalog.core.views import kpi_views, view_table_input
from signal_catalog.errors import CrawlerTimeoutError, TableMissingError
from signal_catalog.settings import PartitionMode
from signal_common.lake import LakeTable, table_arrow_schema, table_uri

log = logging.getLogger(__name__)

DATABASE_DESCRIPTION = "Signal Stream lake: clean events, quarantine, KPI partials, batches."


@dataclass
class TableReport:
    """What sync/watch did to one table."""

    table: str
    mode: PartitionMode
    action: Action = Action.NONE
    partitions_added: int = 0
    partitions_present: int = 0  # partitions found in the lake
    notes: list[str] = field(default_factory=list)


@dataclass
class SyncResult:
    """Outcome of one sync: database created?, one report per table."""

    database_created: bool
    tables: list[TableReport]
    views: dict[str, Action] = field(default_factory=dict)  # KPI view name -> what sync did

    @property
    def refused(self) -> list[TableReport]:
        return [t for t in self.tables if t.action is Action.REFUSE]

    @property
    def partitions_added(self) -> int:
        return sum(t.partitions_added for t in self.tables)


def desired_table_input(
    table: LakeTable, lake_root: str, mode: PartitionMode, dt_range: str
) -> dict[str, Any]:
    """The TableInput sync wants for a table in a partition mode."""
    return table_input(
        table, lake_root, projection_dt_range=dt_range if mode is PartitionMode.PROJECTION else None
    )


def register_partitions(
    catalog: GlueCatalog, lake: Lake, table: LakeTable, lake_root: str
) -> tuple[int, int]:
    """Add the lake's partitions of a table that the catalog lacks: (added, partitions in lake)."""
    in_lake = lake.partitions(table.name)
    in_catalog = catalog.partitions(table.name)
    todo = missing_partitions(in_lake, in_catalog)
    if not todo:
        return 0, len(in_lake)
    result = catalog.batch_create_partitions(
        table.name, [partition_input(table, lake_root, p) for p in todo]
    )
    log.info(
        "partitions registered",
        extra={"table": table.name, "added": result.created, "present": result.already_present},
    )
    return result.created, len(in_lake)


def sync(
    catalog: GlueCatalog,
    lake: Lake,
    tables: Sequence[LakeTable],
    *,
    lake_root: str,
    modes: Callable[[str], PartitionMode],
    dt_range: str,
    force: bool = False,
    on_table: Callable[[TableReport], Any] | None = None,
) -> SyncResult:
    """Ensure the database and tables, then register partitions of non-projection tables."""
    if any(modes(t.name) is not PartitionMode.PROJECTION for t in tables):
        lake.check()
    created = catalog.ensure_database(DATABASE_DESCRIPTION)
    reports: list[TableReport] = []
    for table in tables:
        mode = modes(table.name)
        report = TableReport(table.name, mode)
        plan = plan_table(
            catalog.get_table(table.name),
            desired_table_input(table, lake_root, mode, dt_range),
            force=force,
        )
        report.action = plan.action
        report.notes = list(plan.reasons)
        if plan.action is Action.CREATE:
            catalog.create_table(plan.table_input)
        elif plan.action is Action.UPDATE:
            catalog.update_table(plan.table_input)
        if plan.action is not Action.REFUSE and mode is not PartitionMode.PROJECTION:
            report.partitions_added, report.partitions_present = register_partitions(
                catalog, lake, table, lake_root
            )
        reports.append(report)
        if on_table:
            on_table(report)
    refused = {r.table for r in reports if r.action is Action.REFUSE}
    views = sync_views(catalog, [t for t in kpi_views(list(tables)) if t.name not in refused])
    return SyncResult(created, reports, views)


def sync_views(catalog: GlueCatalog, tables: Sequence[LakeTable]) -> dict[str, Action]:
    """Create or update each KPI table's per-minute view (core.views); what was done, by view."""
    done: dict[str, Action] = {}
    for table in tables:
        wanted = view_table_input(table, catalog.database)
        found = catalog.get_table(wanted["Name"])
        if found is None:
            catalog.create_table(wanted)
            done[wanted["Name"]] = Action.CREATE
        elif found.get("ViewOriginalText") != wanted["ViewOriginalText"] or [
            (c["Name"], c["Type"]) for c in found.get("StorageDescriptor", {}).get("Columns", [])
        ] != [(c["Name"], c["Type"]) for c in wanted["StorageDescriptor"]["Columns"]]:
            catalog.update_table(wanted)
            done[wanted["Name"]] = Action.UPDATE
        else:
            done[wanted["Name"]] = Action.NONE
    return done


def watch(
    catalog: GlueCatalog,
    lake: Lake,
    tables: Sequence[LakeTable],
    *,
    lake_root: str,
    interval_s: float,
    cycles: int | None = None,
    stop: threading.Event | None = None,
    sleep: Callable[[float], Any] = time.sleep,
    on_cycle: Callable[[int, list[TableReport]], Any] | None = None,
) -> int:
    """Register new partitions every `interval_s` seconds; returns the cycles run.

    Runs `cycles` times (forever when None) or until `stop` is set. The tables must exist
    (run sync first); a missing one raises TableMissingError.
    """
    catalog.require_database()
    for table in tables:
        if catalog.get_table(table.name) is None:
            raise TableMissingError(
                f"table {catalog.database}.{table.name} does not exist",
                hint="run `signal-catalog sync` first",
            )
    done = 0
    while cycles is None or done < cycles:
        if stop is not None and stop.is_set():
            break
        reports = []
        for table in tables:
            added, present = register_partitions(catalog, lake, table, lake_root)
            reports.append(
                TableReport(table.name, PartitionMode.REGISTER, Action.NONE, added, present)
            )
        done += 1
        if on_cycle:
            on_cycle(done, reports)
        if cycles is not None and done >= cycles:
            break
        sleep(interval_s)
    return done


def handle_s3_event(
    event: Mapping[str, Any],
    catalog: GlueCatalog,
    *,
    lake_root: str,
    tables: Mapping[str, LakeTable],
) -> dict[str, Any]:
    """Register the partition of every new lake object named by an S3 ObjectCreated event."""
    found, ignored = event_partitions(event, lake_root, tables)
    registered: dict[str, list[str]] = {}
    created = 0
    for name, partitions in sorted(found.items()):
        table = tables[name]
        ordered: list[Partition] = sorted(partitions)
        result = catalog.batch_create_partitions(
            name, [partition_input(table, lake_root, p) for p in ordered]
        )
        created += result.created
        registered[name] = [f"dt={p.dt}/hour={p.hour}" for p in ordered]
    log.info("s3 event handled", extra={"partitions_created": created, "ignored": ignored})
    return {"registered": registered, "partitions_created": created, "ignored_records": ignored}


# --- crawlers -------------------------------------------------------------------------------
@dataclass(frozen=True)
class CrawlerReport:
    """A crawler's name, what was done, its state and its last crawl."""

    name: str
    action: str
    state: str = ""
    last_crawl: str = ""
    changes: str = ""


def create_crawlers(
    catalog: GlueCatalog, tables: Sequence[LakeTable], *, role: str, prefix: str = CRAWLER_PREFIX
) -> list[CrawlerReport]:
    """Create (or update) one crawler per table."""
    reports = []
    for table in tables:
        definition = crawler_definition(
            table.name, database=catalog.database, role=role, prefix=prefix
        )
        existing = catalog.get_crawler(definition["Name"])
        if existing is None:
            catalog.create_crawler(definition)
            action = "created"
        elif definition_differs(existing, definition):
            catalog.update_crawler(definition)
            action = "updated"
        else:
            action = "unchanged"
        reports.append(CrawlerReport(definition["Name"], action))
    return reports


def snapshot(catalog: GlueCatalog, table: str) -> CatalogSnapshot | None:
    """Columns and partition count of a table, for before/after comparisons."""
    found = catalog.get_table(table)
    if found is None:
        return None
    columns = tuple(
        (c["Name"], c["Type"]) for c in found.get("StorageDescriptor", {}).get("Columns", [])
    )
    return CatalogSnapshot(columns, len(catalog.partitions(table)))


def crawler_status(
    catalog: GlueCatalog, tables: Sequence[LakeTable], *, prefix: str = CRAWLER_PREFIX
) -> list[CrawlerReport]:
    """State and last crawl of each table's crawler."""
    reports = []
    for table in tables:
        name = crawler_name(table.name, prefix)
        crawler = catalog.get_crawler(name)
        if crawler is None:
            reports.append(CrawlerReport(name, "missing"))
            continue
        crawl = catalog.latest_crawl(name)
        last = (crawl or {}).get("State") or (crawler.get("LastCrawl") or {}).get("Status", "")
        reports.append(CrawlerReport(name, "exists", str(crawler.get("State", "")), str(last)))
    return reports


def start_crawlers(
    catalog: GlueCatalog,
    tables: Sequence[LakeTable],
    *,
    prefix: str = CRAWLER_PREFIX,
    wait: bool = True,
    timeout_s: float,
    poll_s: float,
    sleep: Callable[[float], Any] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    on_poll: Callable[[dict[str, str]], Any] | None = None,
) -> list[CrawlerReport]:
    """Start each table's crawler; with `wait`, poll until all are READY again or time out."""
    before = {t.name: snapshot(catalog, t.name) for t in tables}
    started: dict[str, str] = {}
    for table in tables:
        name = crawler_name(table.name, prefix)
        if catalog.get_crawler(name) is None:
            raise TableMissingError(
                f"crawler {name} does not exist", hint="run `signal-catalog crawlers create` first"
            )
        started[table.name] = "started" if catalog.start_crawler(name) else "already running"
    if not wait:
        return [CrawlerReport(crawler_name(t, prefix), a, "RUNNING") for t, a in started.items()]
    deadline = clock() + timeout_s
    states: dict[str, str] = {}
    last: dict[str, str] = {}
    while True:
        for table_name in started:
            name = crawler_name(table_name, prefix)
            crawl = catalog.latest_crawl(name)  # ListCrawls: the crawl's own state
            crawler = catalog.get_crawler(name) or {}
            states[table_name] = str(crawler.get("State", "UNKNOWN"))
            last[table_name] = str((crawl or {}).get("State", ""))
        if on_poll:
            on_poll(dict(states))
        if all(s == "READY" for s in states.values()):
            break
        if clock() >= deadline:
            running = sorted(crawler_name(t, prefix) for t, s in states.items() if s != "READY")
            raise CrawlerTimeoutError(
                f"crawlers still running after {timeout_s:.0f}s: {', '.join(running)}",
                hint="check them with `signal-catalog crawlers status`, or raise the timeout",
            )
        sleep(poll_s)
    return [
        CrawlerReport(
            crawler_name(t, prefix),
            action,
            states[t],
            last[t],
            snapshot_changes(before[t], snapshot(catalog, t)),
        )
        for t, action in started.items()
    ]


# --- drift and validate ---------------------------------------------------------------------
def drift(
    catalog: GlueCatalog,
    lake: Lake,
    tables: Sequence[LakeTable],
    *,
    lake_root: str,
    sample_files: int,
) -> tuple[list[DriftFinding], dict[str, int]]:
    """Disagreements between lake files, the catalog and libs/common; and files read per table."""
    lake.check()
    catalog.require_database()
    findings: list[DriftFinding] = []
    files_read: dict[str, int] = {}
    for table in tables:
        findings += catalog_findings(
            table, catalog.get_table(table.name), expected_location=table_uri(lake_root, table)
        )
        files = lake.data_files(table.name, limit=sample_files)
        files_read[table.name] = len(files)
        for uri in files:
            findings += file_findings(table, f"file {uri}", lake.read_schema(uri))
    return findings, files_read


def validate(
    catalog: GlueCatalog, engine: QueryEngine, tables: Sequence[LakeTable]
) -> list[SmokeResult]:
    """Run each table's smoke query through the engine; tables must be in the catalog."""
    catalog.require_database()
    results = []
    for table in tables:
        found = catalog.get_table(table.name)
        if found is None:
            raise TableMissingError(
                f"table {catalog.database}.{table.name} does not exist",
                hint="run `signal-catalog sync` first",
            )
        location = str(found.get("StorageDescriptor", {}).get("Location", ""))
        results.append(engine.smoke(table.name, location))
    return results


# --- compaction -----------------------------------------------------------------------------
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
    committed = max((int(h.get("seq", 0)) for h in lake.commit_heads()), default=0)
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
    schema = table_arrow_schema(table)
    parts = [lake.read_table(f.uri).select(schema.names).cast(schema) for f in files]
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
