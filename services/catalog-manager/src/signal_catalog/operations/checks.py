"""Checks: drift (lake files vs catalog vs libs/common) and validate (each table's smoke query)."""

from __future__ import annotations

from collections.abc import Sequence

from signal_catalog.adapters.glue import GlueCatalog
from signal_catalog.adapters.lake import Lake
from signal_catalog.adapters.query import SmokeEngine, SmokeResult
from signal_catalog.core.drift import DriftFinding, catalog_findings, file_findings
from signal_catalog.errors import TableMissingError
from signal_common.lake import LakeTable, table_uri


def drift(
    catalog: GlueCatalog,
    lake: Lake,
    tables: Sequence[LakeTable],
    *,
    sample_files: int,
) -> tuple[list[DriftFinding], dict[str, int]]:
    """Disagreements between lake files, the catalog and libs/common; and files read per table."""
    lake.check()
    catalog.require_database()
    findings: list[DriftFinding] = []
    files_read: dict[str, int] = {}
    for table in tables:
        findings += catalog_findings(
            table, catalog.get_table(table.name), expected_location=table_uri(lake.root, table)
        )
        files = lake.data_files(table.name, limit=sample_files)
        files_read[table.name] = len(files)
        for uri in files:
            findings += file_findings(table, f"file {uri}", lake.read_schema(uri))
    return findings, files_read


def validate(
    catalog: GlueCatalog, engine: SmokeEngine, tables: Sequence[LakeTable]
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
