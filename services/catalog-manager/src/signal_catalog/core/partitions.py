"""Partitions: parsing Hive-style paths, Glue PartitionInputs, batching, S3 event records."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import unquote_plus, urlparse

from signal_catalog.core.tables import storage_descriptor
from signal_common.lake import LakeTable, partition_path

MAX_PARTITIONS_PER_BATCH = 100  # BatchCreatePartition accepts at most 100 PartitionInputs

_DT_DIR = re.compile(r"^dt=(\d{4}-\d{2}-\d{2})$")
_HOUR_DIR = re.compile(r"^hour=(\d{1,2})$")
T = TypeVar("T")


@dataclass(frozen=True, order=True)
class Partition:
    """One (dt, hour) partition of a table."""

    dt: str
    hour: int

    @property
    def values(self) -> list[str]:
        """Partition values as Glue stores them (strings, in key order)."""
        return [self.dt, str(self.hour)]


def parse_dt_dir(name: str) -> str | None:
    """The date of a `dt=YYYY-MM-DD` directory name, or None if it is not one (or not a date)."""
    match = _DT_DIR.match(name.strip("/"))
    if not match:
        return None
    try:
        dt.date.fromisoformat(match.group(1))
    except ValueError:
        return None
    return match.group(1)


def parse_hour_dir(name: str) -> int | None:
    """The hour of an `hour=H` directory name (0-23), or None if it is not one."""
    match = _HOUR_DIR.match(name.strip("/"))
    if not match:
        return None
    hour = int(match.group(1))
    return hour if 0 <= hour <= 23 else None


def is_hourly(table: LakeTable) -> bool:
    """Whether the table's partitions are (dt, hour) directories, the only ones listing the
    lake and registering them knows (alert_events, by day only, is projected instead)."""
    return tuple(k.name for k in table.partition_keys) == ("dt", "hour")


def partition_from_values(values: Sequence[str]) -> Partition | None:
    """A Partition from Glue partition values, or None if they are not (dt, hour)."""
    if len(values) != 2:
        return None
    dt_value = parse_dt_dir(f"dt={values[0]}")
    hour = parse_hour_dir(f"hour={values[1]}")
    if dt_value is None or hour is None:
        return None
    return Partition(dt_value, hour)


def partition_input(table: LakeTable, lake_root: str, partition: Partition) -> dict[str, Any]:
    """The Glue PartitionInput of one partition (same Parquet storage as its table)."""
    root = lake_root.rstrip("/")
    location = f"{root}/{partition_path(table, partition.dt, partition.hour)}/"
    return {"Values": partition.values, "StorageDescriptor": storage_descriptor(table, location)}


def chunks(items: Sequence[T], size: int = MAX_PARTITIONS_PER_BATCH) -> Iterator[Sequence[T]]:
    """Consecutive slices of at most `size` items."""
    if size < 1:
        raise ValueError("chunk size must be positive")
    for start in range(0, len(items), size):
        yield items[start : start + size]


def missing_partitions(
    in_lake: Iterable[Partition], in_catalog: Iterable[Partition]
) -> list[Partition]:
    """Partitions present in the lake and absent from the catalog, oldest first."""
    return sorted(set(in_lake) - set(in_catalog))


def is_data_file(name: str) -> bool:
    """Whether a file name is a Parquet data file (not a marker, temp or hidden file)."""
    base = name.rsplit("/", 1)[-1]
    return base.endswith(".parquet") and not base.startswith(("_", "."))


@dataclass(frozen=True)
class ObjectPartition:
    """The table and partition an S3 object belongs to."""

    table: str
    partition: Partition


def object_partition(
    bucket: str, key: str, lake_root: str, tables: Mapping[str, LakeTable]
) -> ObjectPartition | None:
    """The partition of a data object under the lake root, or None for anything else."""
    parsed = urlparse(lake_root)
    if parsed.scheme != "s3" or parsed.netloc != bucket:
        return None
    prefix = parsed.path.strip("/")
    rest = key
    if prefix:
        if not key.startswith(prefix + "/"):
            return None
        rest = key[len(prefix) + 1 :]
    parts = rest.split("/")
    if len(parts) != 4 or not is_data_file(parts[3]):
        return None
    table, dt_dir, hour_dir, _ = parts
    dt_value, hour = parse_dt_dir(dt_dir), parse_hour_dir(hour_dir)
    if table not in tables or dt_value is None or hour is None:
        return None
    return ObjectPartition(table, Partition(dt_value, hour))


def _created_objects(event: Mapping[str, Any]) -> list[tuple[str | None, str]]:
    """(bucket, key) of each created object an event names; (None, "") for other records."""
    if event.get("source") == "aws.s3" or "detail-type" in event:
        detail = event.get("detail", {})
        if event.get("source") != "aws.s3" or event.get("detail-type") != "Object Created":
            return [(None, "")]
        bucket = str(detail.get("bucket", {}).get("name", ""))
        return [(bucket, str(detail.get("object", {}).get("key", "")))]
    objects: list[tuple[str | None, str]] = []
    for record in event.get("Records", []):
        if record.get("eventSource") != "aws:s3" or not str(record.get("eventName", "")).startswith(
            "ObjectCreated:"
        ):
            objects.append((None, ""))
            continue
        s3 = record.get("s3", {})
        objects.append(
            (str(s3.get("bucket", {}).get("name", "")), str(s3.get("object", {}).get("key", "")))
        )
    return objects


def event_partitions(
    event: Mapping[str, Any], lake_root: str, tables: Mapping[str, LakeTable]
) -> tuple[dict[str, set[Partition]], int]:
    """Partitions per table named by an S3 ObjectCreated event, and records ignored.

    Both shapes S3 sends: a bucket notification (`Records`, each `aws:s3` / `ObjectCreated:*`)
    and an EventBridge event (`source` aws.s3, `detail-type` Object Created, one object).
    """
    found: dict[str, set[Partition]] = {}
    ignored = 0
    for bucket, raw_key in _created_objects(event):
        if bucket is None:
            ignored += 1
            continue
        # S3 URL-encodes keys ('=' arrives as %3D, spaces as '+'); lake keys hold neither.
        key = unquote_plus(raw_key)
        hit = object_partition(bucket, key, lake_root, tables)
        if hit is None:
            ignored += 1
            continue
        found.setdefault(hit.table, set()).add(hit.partition)
    return found, ignored
