"""Glue TableInput for each lake table, derived from libs/common's lake layout."""

from __future__ import annotations

from typing import Any

from signal_common.lake import ALERT_EVENTS, ALL_TABLES, Column, LakeTable, table_uri

# Every table `sync` keeps in the catalog (Athena reads them): the stream tables, and the alert
# evaluator's alert_events (#25), which ALL_TABLES leaves out (its readers, the processor's
# writers and compaction assume dt/hour partitions and lineage; alert_events has neither).
CATALOG_TABLES: tuple[LakeTable, ...] = (*ALL_TABLES, ALERT_EVENTS)

PARQUET_INPUT_FORMAT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
PARQUET_OUTPUT_FORMAT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"
PARQUET_SERDE = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
MANAGED_BY = "signal-catalog"

# Table parameters this service owns; anything else on a table (e.g. added by a crawler or by
# hand) is left as it is.
BASE_PARAMETERS: dict[str, str] = {
    "EXTERNAL": "TRUE",
    "classification": "parquet",
    "parquet.compression": "SNAPPY",
    "signal.managed_by": MANAGED_BY,
}
PROJECTION_PREFIX = "projection."
LOCATION_TEMPLATE = "storage.location.template"


def glue_column(column: Column) -> dict[str, str]:
    """A lake column as a Glue column."""
    return {"Name": column.name, "Type": column.hive_type, "Comment": column.description[:255]}


def storage_descriptor(table: LakeTable, location: str) -> dict[str, Any]:
    """Parquet (Snappy) storage of a table or partition at `location`."""
    return {
        "Columns": [glue_column(c) for c in table.columns],
        "Location": location,
        "InputFormat": PARQUET_INPUT_FORMAT,
        "OutputFormat": PARQUET_OUTPUT_FORMAT,
        "Compressed": True,
        "SerdeInfo": {
            "SerializationLibrary": PARQUET_SERDE,
            "Parameters": {"serialization.format": "1"},
        },
        "StoredAsSubDirectories": False,
    }


def projection_parameters(table: LakeTable, lake_root: str, dt_range: str) -> dict[str, str]:
    """Athena partition-projection properties of the table's partition keys: dt a daily date
    range, hour an integer 0-23 (a table partitioned by day only has no hour).

    Names and values as AWS documents them (Athena user guide, "Partition projection"):
    `date` type with `yyyy-MM-dd` format and `integer` type with a `min,max` range; the
    location template maps each partition to the Hive-style directory its writer writes.
    """
    keys = [k.name for k in table.partition_keys]
    unknown = sorted(set(keys) - {"dt", "hour"})
    if unknown:
        raise ValueError(f"table {table.name}: no projection for partition keys {unknown}")
    parameters = {"projection.enabled": "true"}
    if "dt" in keys:
        parameters |= {
            "projection.dt.type": "date",
            "projection.dt.range": dt_range,
            "projection.dt.format": "yyyy-MM-dd",
        }
    if "hour" in keys:
        parameters |= {"projection.hour.type": "integer", "projection.hour.range": "0,23"}
    directories = "/".join(f"{key}=${{{key}}}" for key in keys)
    parameters[LOCATION_TEMPLATE] = f"{table_uri(lake_root, table)}/{directories}"
    return parameters


def table_input(
    table: LakeTable, lake_root: str, *, projection_dt_range: str | None = None
) -> dict[str, Any]:
    """The Glue TableInput of a lake table; with `projection_dt_range`, projection is enabled."""
    parameters = dict(BASE_PARAMETERS)
    if projection_dt_range is not None:
        parameters.update(projection_parameters(table, lake_root, projection_dt_range))
    return {
        "Name": table.name,
        "Description": table.description,
        "TableType": "EXTERNAL_TABLE",
        "Parameters": parameters,
        "PartitionKeys": [glue_column(c) for c in table.partition_keys],
        "StorageDescriptor": storage_descriptor(table, table_uri(lake_root, table)),
    }


def is_projection_key(key: str) -> bool:
    """Whether a table parameter belongs to partition projection."""
    return key.startswith(PROJECTION_PREFIX) or key == LOCATION_TEMPLATE


def merged_parameters(existing: dict[str, str], desired: dict[str, str]) -> dict[str, str]:
    """Desired parameters over the existing ones; stale projection keys are dropped."""
    kept = {k: v for k, v in existing.items() if not is_projection_key(k)}
    return {**kept, **desired}


def same_location(a: str, b: str) -> bool:
    """Whether two table locations name the same directory (trailing slashes ignored)."""
    return a.rstrip("/") == b.rstrip("/")
