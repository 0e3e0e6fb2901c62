"""Decide what a sync does to one table: create, update, nothing, or refuse."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from signal_catalog.core.schema_diff import SchemaDiff, column_diff
from signal_catalog.core.tables import is_projection_key, merged_parameters, same_location


class Action(StrEnum):
    """What sync does (or did) to a table."""

    CREATE = "created"
    UPDATE = "updated"
    NONE = "unchanged"
    REFUSE = "refused"


@dataclass(frozen=True)
class TablePlan:
    """The decision for one table, with the reasons."""

    action: Action
    table_input: dict[str, Any]
    diff: SchemaDiff = field(default_factory=SchemaDiff)
    location_mismatch: tuple[str, str] | None = None  # (actual, expected)
    reasons: tuple[str, ...] = ()


_STORAGE_KEYS = ("InputFormat", "OutputFormat", "SerdeInfo", "Compressed")


def _storage_differs(existing: Mapping[str, Any], desired: Mapping[str, Any]) -> bool:
    have_serde = existing.get("SerdeInfo", {})
    want_serde = desired["SerdeInfo"]
    if have_serde.get("SerializationLibrary") != want_serde["SerializationLibrary"]:
        return True
    if (have_serde.get("Parameters") or {}) != want_serde["Parameters"]:
        return True
    return any(existing.get(k) != desired[k] for k in _STORAGE_KEYS if k != "SerdeInfo")


def _parameters_differ(existing: Mapping[str, str], desired: Mapping[str, str]) -> bool:
    if any(existing.get(k) != v for k, v in desired.items()):
        return True
    # projection keys present in the catalog but not wanted any more (mode changed)
    return any(is_projection_key(k) and k not in desired for k in existing)


def plan_table(
    existing: Mapping[str, Any] | None, desired: dict[str, Any], *, force: bool = False
) -> TablePlan:
    """Compare a catalog table (GetTable output, or None) with the desired TableInput."""
    if existing is None:
        return TablePlan(Action.CREATE, desired)
    have_sd = existing.get("StorageDescriptor", {})
    want_sd = desired["StorageDescriptor"]
    diff = column_diff(
        have_sd.get("Columns", []),
        want_sd["Columns"],
        actual_partition_keys=existing.get("PartitionKeys", []),
        desired_partition_keys=desired["PartitionKeys"],
    )
    reasons = list(diff.describe())
    location = str(have_sd.get("Location", ""))
    mismatch = None
    if not same_location(location, want_sd["Location"]):
        mismatch = (location, want_sd["Location"])
        reasons.append(f"location {location} -> {want_sd['Location']}")
    have_params = dict(existing.get("Parameters") or {})
    if _parameters_differ(have_params, desired["Parameters"]):
        reasons.append("table properties")
    if _storage_differs(have_sd, want_sd):
        reasons.append("storage format")
    if existing.get("Description", "") != desired["Description"]:
        reasons.append("description")
    if existing.get("TableType") != desired["TableType"]:
        reasons.append("table type")
    update = {**desired, "Parameters": merged_parameters(have_params, desired["Parameters"])}
    if not reasons:
        return TablePlan(Action.NONE, update, diff)
    if (not diff.is_compatible or mismatch) and not force:
        return TablePlan(Action.REFUSE, update, diff, mismatch, tuple(reasons))
    return TablePlan(Action.UPDATE, update, diff, mismatch, tuple(reasons))
