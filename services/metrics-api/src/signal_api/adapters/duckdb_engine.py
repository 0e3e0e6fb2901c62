"""DuckDBEngine: embedded DuckDB over the local lake, one view per lake table.

Views read `<lake_root>/<table>/dt=*/hour=*/*.parquet` with Hive partitioning, so the `dt`/`hour`
predicates of every query prune whole files before they are opened (no `union_by_name`: it would
open every file's footer on each query; all files of a table share the lake.py schema). Queries
arrive in Trino dialect and are transpiled to DuckDB by sqlglot (cached per query text).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import TypeVar

import duckdb
import sqlglot

from signal_api.adapters.engine import Columns, Row
from signal_api.core.errors import EngineError, EngineTimeoutError, EngineUnavailableError
from signal_api.core.queries import Query
from signal_common.lake import ALL_TABLES, LakeTable, local_path, table_uri

log = logging.getLogger(__name__)
T = TypeVar("T")

_DUCKDB_TYPES = {
    "string": "VARCHAR",
    "timestamp": "TIMESTAMPTZ",
    "bigint": "BIGINT",
    "int": "INTEGER",
    "double": "DOUBLE",
    "map<string,bigint>": "MAP(VARCHAR, BIGINT)",
    "boolean": "BOOLEAN",
}


_EMPTY_RECHECK_S = 5.0


@lru_cache(maxsize=512)
def to_duckdb(trino_sql: str) -> str:
    """The DuckDB form of a Trino query (sqlglot)."""
    return sqlglot.transpile(trino_sql, read="trino", write="duckdb")[0]


def _has_files(directory: Path) -> bool:
    return directory.is_dir() and any(directory.glob("dt=*/hour=*/*.parquet"))


def _view_sql(table: LakeTable, directory: Path) -> str:
    if _has_files(directory):
        pattern = str(directory / "dt=*" / "hour=*" / "*.parquet").replace("'", "''")
        return (
            f"CREATE OR REPLACE VIEW {table.name} AS SELECT * FROM read_parquet('{pattern}', "
            "hive_partitioning = true, hive_types = {'dt': VARCHAR, 'hour': INTEGER})"
        )
    # No data yet: an empty view with the right columns, so queries answer with no rows.
    columns = ", ".join(
        f"CAST(NULL AS {_DUCKDB_TYPES[c.hive_type]}) AS {c.name}"
        for c in (*table.columns, *table.partition_keys)
    )
    return f"CREATE OR REPLACE VIEW {table.name} AS SELECT {columns} WHERE false"


class DuckDBEngine:
    """Queries the lake under a `file://` root with embedded DuckDB."""

    name = "duckdb"

    def __init__(self, lake_root: str, *, threads: int = 2, timeout_s: float = 20.0) -> None:
        self._root = Path(local_path(lake_root))
        self._timeout_s = timeout_s
        self._conn = duckdb.connect(":memory:")
        # GLOBAL: queries run on cursors (one per call), which do not inherit session settings
        self._conn.execute("SET GLOBAL TimeZone = 'UTC'")
        self._conn.execute(f"SET GLOBAL threads = {int(threads)}")
        # read only the column chunks a query needs: with prefetching DuckDB reads a small file
        # whole once per scan (a compacted KPI hour is ~12 KB), 2.5x the bytes it needs
        self._conn.execute("SET GLOBAL disable_parquet_prefetching = true")
        self._lock = threading.Lock()
        self._empty: set[str] = set()
        self._next_refresh = 0.0
        for table in ALL_TABLES:
            self._create_view(table)

    def _create_view(self, table: LakeTable) -> None:
        directory = Path(local_path(table_uri(str(self._root), table)))
        sql = _view_sql(table, directory)
        self._conn.execute(sql)
        if "read_parquet" in sql:
            self._empty.discard(table.name)
        else:
            self._empty.add(table.name)

    def _refresh_empty_views(self) -> None:
        """Tables that had no files when last seen get a real view once files appear (checked
        at most every few seconds: the processor writes new tables rarely)."""
        if not self._empty or time.monotonic() < self._next_refresh:
            return
        self._next_refresh = time.monotonic() + _EMPTY_RECHECK_S
        with self._lock:
            for table in ALL_TABLES:
                if table.name in self._empty:
                    self._create_view(table)

    def run(self, query: Query) -> list[Row]:
        """Rows of a Trino query, run on DuckDB with the same positional parameters."""

        def fetch(result: duckdb.DuckDBPyConnection) -> list[Row]:
            names = [d[0] for d in result.description or ()]
            return [dict(zip(names, row, strict=True)) for row in result.fetchall()]

        return self._execute(query, fetch)

    def run_columns(self, query: Query) -> Columns:
        """The same result as `run`, one list of Python values per column (fetched column-wise:
        no per-row tuple or dict; NULLs are None)."""

        def fetch(result: duckdb.DuckDBPyConnection) -> Columns:
            return {name: array.tolist() for name, array in result.fetchnumpy().items()}

        return self._execute(query, fetch)

    def _execute(self, query: Query, fetch: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        if not self._root.is_dir():
            raise EngineUnavailableError(f"lake root {self._root} does not exist")
        self._refresh_empty_views()
        sql = to_duckdb(query.sql)
        cursor = self._conn.cursor()  # one cursor per call: safe across threads
        timer = threading.Timer(self._timeout_s, cursor.interrupt)
        timer.start()
        try:
            return fetch(cursor.execute(sql, list(query.params)))
        except duckdb.InterruptException as exc:
            raise EngineTimeoutError(
                f"query {query.name} exceeded {self._timeout_s:g} s and was cancelled"
            ) from exc
        except duckdb.IOException as exc:
            log.warning("lake read failed", extra={"query": query.name, "error": str(exc)})
            raise EngineUnavailableError(f"lake read failed for query {query.name}") from exc
        except duckdb.Error as exc:
            log.error("query failed", extra={"query": query.name, "error": str(exc)})
            raise EngineError(f"query {query.name} failed") from exc
        finally:
            timer.cancel()
            cursor.close()

    def close(self) -> None:
        """Close the DuckDB connection."""
        self._conn.close()
