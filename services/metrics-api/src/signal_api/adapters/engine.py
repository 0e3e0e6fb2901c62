"""The query-engine interface: run one Trino-dialect query with positional parameters."""

from __future__ import annotations

from typing import Any, Protocol

from signal_api.core.queries import Query

Row = dict[str, Any]


class QueryEngine(Protocol):
    """Runs Trino-dialect queries; raises EngineError (or its Unavailable/Timeout kinds)."""

    name: str

    def run(self, query: Query) -> list[Row]:
        """The rows of `query`, as dicts keyed by column name (blocking)."""
        ...

    def close(self) -> None:
        """Release connections and threads."""
        ...
