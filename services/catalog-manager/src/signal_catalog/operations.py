"""What the CLI and the Lambda do: sync, watch, event, crawlers, drift, validate.

Each operation takes its adapters (catalog, lake, query engine) as arguments, so tests and entry
points wire them the same way.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from signal_catalog.adapters.glue import GlueCatalog
from signal_catalog.adapters.lake import Lake
from signal_catalog.adapters.query import QueryEngine, SmokeResult
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
from signal_catalog.errors import CrawlerTimeoutError, TableMissingError
from signal_catalog.settings import PartitionMode
from signal_common.lake import LakeTable, table_uri

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
    return SyncResult(created, reports)


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
