"""Drift: the Parquet schemas in the lake vs the catalog vs libs/common."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from signal_catalog.core.schema_diff import column_diff, normalize_type
from signal_common.lake import LakeTable


def hive_type_of(arrow_type: pa.DataType) -> str:
    """The Hive (Glue/Athena) type that reads an Arrow type from Parquet."""
    t = arrow_type
    if pa.types.is_timestamp(t):
        return "timestamp"
    if pa.types.is_date(t):
        return "date"
    if pa.types.is_boolean(t):
        return "boolean"
    if pa.types.is_int8(t):
        return "tinyint"
    if pa.types.is_int16(t):
        return "smallint"
    if pa.types.is_int32(t):
        return "int"
    if pa.types.is_int64(t):
        return "bigint"
    if pa.types.is_float32(t):
        return "float"
    if pa.types.is_float64(t):
        return "double"
    if pa.types.is_decimal(t):
        return f"decimal({t.precision},{t.scale})"
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "string"
    if pa.types.is_binary(t) or pa.types.is_large_binary(t):
        return "binary"
    if pa.types.is_map(t):
        return f"map<{hive_type_of(t.key_type)},{hive_type_of(t.item_type)}>"
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return f"array<{hive_type_of(t.value_type)}>"
    if pa.types.is_struct(t):
        fields = ",".join(f"{f.name}:{hive_type_of(f.type)}" for f in t)
        return f"struct<{fields}>"
    return f"unsupported:{t}"


def arrow_columns(schema: pa.Schema) -> list[dict[str, str]]:
    """A Parquet file's Arrow schema as Glue-style columns (Name, Type)."""
    return [{"Name": f.name, "Type": hive_type_of(f.type)} for f in schema]


def code_columns(table: LakeTable) -> list[dict[str, str]]:
    """A table's non-partition columns as libs/common declares them."""
    return [{"Name": c.name, "Type": normalize_type(c.hive_type)} for c in table.columns]


@dataclass(frozen=True)
class DriftFinding:
    """One disagreement: where, between what, and what exactly."""

    table: str
    source: str  # "file <path>" or "catalog"
    detail: str


def file_findings(table: LakeTable, file_label: str, schema: pa.Schema) -> list[DriftFinding]:
    """How one Parquet file's schema disagrees with libs/common. A nullable column the file
    lacks is not drift: it was added after the file was written (an additive change, e.g. the
    #24 histogram and sketch columns), and readers read it as null (unknown)."""
    diff = column_diff(arrow_columns(schema), code_columns(table))
    findings = [DriftFinding(table.name, file_label, f"extra column {n}") for n in diff.removed]
    findings += [
        DriftFinding(table.name, file_label, f"missing column {n}")
        for n in diff.added
        if not table.column(n).nullable
    ]
    findings += [
        DriftFinding(table.name, file_label, f"column {n} is {have} in the file, {want} in code")
        for n, have, want in diff.changed
    ]
    return findings


def catalog_findings(
    table: LakeTable,
    catalog_table: Mapping[str, Any] | None,
    *,
    expected_location: str,
) -> list[DriftFinding]:
    """How the catalog's definition of a table disagrees with libs/common and the lake root."""
    if catalog_table is None:
        return [DriftFinding(table.name, "catalog", "table is not in the catalog")]
    sd = catalog_table.get("StorageDescriptor", {})
    actual = [{"Name": c["Name"], "Type": c["Type"]} for c in sd.get("Columns", [])]
    diff = column_diff(
        actual,
        code_columns(table),
        actual_partition_keys=catalog_table.get("PartitionKeys", []),
        desired_partition_keys=[
            {"Name": c.name, "Type": c.hive_type} for c in table.partition_keys
        ],
    )
    findings = [DriftFinding(table.name, "catalog", line.strip()) for line in diff.describe()]
    location = str(sd.get("Location", ""))
    if location.rstrip("/") != expected_location.rstrip("/"):
        findings.append(
            DriftFinding(
                table.name, "catalog", f"location is {location}, expected {expected_location}"
            )
        )
    return findings
