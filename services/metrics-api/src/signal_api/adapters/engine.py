"""The query-engine interface: run one Trino-dialect query with positional parameters."""

from __future__ import annotations

from typing import Any, Protocol

from signal_api.core.queries import Query

Row = dict[str, Any]
Columns = dict[str, list[Any]]


def columns_of(rows: list[Row]) -> Columns:
    """Rows transposed to one list per column (an engine without `run_columns` is read so)."""
    if not rows:
        return {}
    return {name: [row[name] for row in rows] for name in rows[0]}


class QueryEngine(Protocol):
    """Runs Trino-dialect queries; raises EngineError (or its Unavailable/Timeout kinds)."""

    name: str

    def run(self, query: Query) -> list[Row]:
        """The rows of `query`, as dicts keyed by column name (blocking)."""
        ...

    def close(self) -> None:
        """Release connections and threads."""
        ...
