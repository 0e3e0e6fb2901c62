"""Crawlers: one Glue crawler per table, created, started (and waited for) and reported on."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from signal_catalog.adapters.glue import GlueCatalog
from signal_catalog.core.crawlers import (
    CRAWLER_PREFIX,
    CatalogSnapshot,
    crawler_definition,
    crawler_name,
    definition_differs,
    snapshot_changes,
)
from signal_catalog.errors import CrawlerTimeoutError, TableMissingError
from signal_common.lake import LakeTable


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
