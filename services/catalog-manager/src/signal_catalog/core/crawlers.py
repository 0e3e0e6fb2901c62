"""Crawler definitions, one per lake table, named like the seed's (`crawler_<table>`)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

CRAWLER_PREFIX = "crawler_"

# Tables are created from code, so crawlers only add partitions: they never rewrite a table's
# schema (UpdateBehavior LOG) and partitions inherit the table's definition.
CRAWLER_CONFIGURATION = json.dumps(
    {
        "Version": 1.0,
        "CrawlerOutput": {"Partitions": {"AddOrUpdateBehavior": "InheritFromTable"}},
    },
    separators=(",", ":"),
    sort_keys=True,
)


def crawler_name(table: str, prefix: str = CRAWLER_PREFIX) -> str:
    """The crawler of a table, e.g. `crawler_signal_strength_by_operator`."""
    return f"{prefix}{table}"


def crawler_definition(
    table: str, *, database: str, role: str, prefix: str = CRAWLER_PREFIX
) -> dict[str, Any]:
    """CreateCrawler/UpdateCrawler arguments for one table (a catalog target on that table)."""
    return {
        "Name": crawler_name(table, prefix),
        "Role": role,
        "DatabaseName": database,
        "Description": f"Adds new partitions of {database}.{table} (managed by signal-catalog).",
        "Targets": {"CatalogTargets": [{"DatabaseName": database, "Tables": [table]}]},
        "SchemaChangePolicy": {"UpdateBehavior": "LOG", "DeleteBehavior": "LOG"},
        "Configuration": CRAWLER_CONFIGURATION,
    }


def definition_differs(existing: Mapping[str, Any], desired: Mapping[str, Any]) -> bool:
    """Whether an existing crawler (GetCrawler output) differs from the desired definition."""
    for key, value in desired.items():
        have = existing.get(key)
        if key == "Configuration" and have:
            if json.loads(str(have)) != json.loads(str(value)):
                return True
        elif key == "Targets":
            if (have or {}).get("CatalogTargets") != value["CatalogTargets"]:
                return True
        elif have != value:
            return True
    return False


@dataclass(frozen=True)
class CatalogSnapshot:
    """What a crawler can change about one table: its columns and its partitions."""

    columns: tuple[tuple[str, str], ...]
    partitions: int


def snapshot_changes(before: CatalogSnapshot | None, after: CatalogSnapshot | None) -> str:
    """A short description of what changed between two snapshots of one table."""
    if before is None and after is None:
        return "table missing"
    if before is None:
        return "table created"
    if after is None:
        return "table deleted"
    notes = []
    if after.partitions != before.partitions:
        notes.append(f"partitions {before.partitions} -> {after.partitions}")
    if after.columns != before.columns:
        notes.append("columns changed")
    return ", ".join(notes) or "no change"
