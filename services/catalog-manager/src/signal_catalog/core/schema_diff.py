"""Compare a table's columns as the catalog has them with what libs/common declares."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


def normalize_type(hive_type: str) -> str:
    """A Hive type in canonical form (lower case, no spaces) for comparison."""
    return "".join(hive_type.lower().split())


@dataclass(frozen=True)
class SchemaDiff:
    """Differences between an actual column list and the desired one."""

    added: tuple[str, ...] = ()  # desired, not present
    removed: tuple[str, ...] = ()  # present, not desired
    changed: tuple[tuple[str, str, str], ...] = ()  # (name, actual type, desired type)
    partition_keys_changed: bool = False
    comments_changed: tuple[str, ...] = field(default=())

    @property
    def is_empty(self) -> bool:
        return not (
            self.added
            or self.removed
            or self.changed
            or self.partition_keys_changed
            or self.comments_changed
        )

    @property
    def is_compatible(self) -> bool:
        """Only additions (and comment edits): readers of old files and old queries still work."""
        return not (self.removed or self.changed or self.partition_keys_changed)

    def describe(self) -> list[str]:
        """One human-readable line per difference."""
        lines = [f"+ {name} (new column)" for name in self.added]
        lines += [f"- {name} (column removed)" for name in self.removed]
        lines += [f"~ {name}: {old} -> {new} (type changed)" for name, old, new in self.changed]
        if self.partition_keys_changed:
            lines.append("~ partition keys changed")
        lines += [f"  {name}: comment updated" for name in self.comments_changed]
        return lines


def _types(columns: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    return {str(c["Name"]).lower(): normalize_type(str(c["Type"])) for c in columns}


def column_diff(
    actual: Sequence[Mapping[str, Any]],
    desired: Sequence[Mapping[str, Any]],
    *,
    actual_partition_keys: Sequence[Mapping[str, Any]] = (),
    desired_partition_keys: Sequence[Mapping[str, Any]] = (),
) -> SchemaDiff:
    """How `actual` Glue columns differ from `desired` ones (names compared case-insensitively)."""
    have, want = _types(actual), _types(desired)
    comments_have = {str(c["Name"]).lower(): c.get("Comment", "") for c in actual}
    return SchemaDiff(
        added=tuple(n for n in want if n not in have),
        removed=tuple(n for n in have if n not in want),
        changed=tuple((n, have[n], want[n]) for n in want if n in have and have[n] != want[n]),
        partition_keys_changed=(
            list(_types(actual_partition_keys).items())
            != list(_types(desired_partition_keys).items())
        ),
        comments_changed=tuple(
            str(c["Name"]).lower()
            for c in desired
            if str(c["Name"]).lower() in comments_have
            and comments_have[str(c["Name"]).lower()] != c.get("Comment", "")
        ),
    )
