"""Sync: the database, tables and KPI views from libs/common, and the lake's partitions into
the catalog (once with `sync`, every interval with `watch`, per S3 event in the Lambda)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from signal_catalog.adapters.glue import GlueCatalog
from signal_catalog.adapters.lake import Lake
from signal_catalog.core.partitions import (
    Partition,
    event_partitions,
    is_hourly,
    missing_partitions,
    partition_input,
)
from signal_catalog.core.plan import Action, plan_table
from signal_catalog.core.tables import table_input
from signal_catalog.core.views import kpi_views, view_table_input
from signal_catalog.errors import TableMissingError
from signal_catalog.settings import PartitionMode
from signal_common.lake import LakeTable

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


def partition_mode(table: LakeTable, modes: Callable[[str], PartitionMode]) -> PartitionMode:
    """The settings' partition mode of a table, except that a table not partitioned by
    (dt, hour) is always projected (alert_events: a new day partition needs no registration,
    and its Lambda and sync listing know only hour directories)."""
    return modes(table.name) if is_hourly(table) else PartitionMode.PROJECTION


def register_partitions(catalog: GlueCatalog, lake: Lake, table: LakeTable) -> tuple[int, int]:
    """Add the lake's partitions of a table that the catalog lacks: (added, partitions in lake)."""
    in_lake = lake.partitions(table.name)
    in_catalog = catalog.partitions(table.name)
    todo = missing_partitions(in_lake, in_catalog)
    if not todo:
        return 0, len(in_lake)
    result = catalog.batch_create_partitions(
        table.name, [partition_input(table, lake.root, p) for p in todo]
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
    modes: Callable[[str], PartitionMode],
    dt_range: str,
    force: bool = False,
    on_table: Callable[[TableReport], Any] | None = None,
) -> SyncResult:
    """Ensure the database and tables, then register partitions of non-projection tables."""
    if any(partition_mode(t, modes) is not PartitionMode.PROJECTION for t in tables):
        lake.check()
    created = catalog.ensure_database(DATABASE_DESCRIPTION)
    reports: list[TableReport] = []
    for table in tables:
        mode = partition_mode(table, modes)
        report = TableReport(table.name, mode)
        plan = plan_table(
            catalog.get_table(table.name),
            desired_table_input(table, lake.root, mode, dt_range),
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
                catalog, lake, table
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
            added, present = register_partitions(catalog, lake, table)
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
