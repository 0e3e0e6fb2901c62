"""DuckDBEngine: embedded DuckDB over the local lake, one view per lake table.

Views read `<lake_root>/<table>/dt=*/hour=*/*.parquet` with Hive partitioning, so the `dt`/`hour`
predicates of every query prune whole files before they are opened (no `union_by_name`: it would
open every file's footer on each query; all files of a table share the lake.py schema). Queries
arrive in Trino dialect and are transpiled to DuckDB by sqlglot (cached per query text).

DuckDB's glob silently skips a directory it cannot list or enter, so a scan over an unreadable
partition would answer without it. Before each query the engine therefore opens the directories
of the partitions the query reads (`Query.reads`: its tables and dt/hour bounds; about 30
`os.scandir` calls for a day) and refuses it with LakeUnreadableError naming those it cannot
read, and checks them again once the scan is done (a directory made unreadable while the query
ran was skipped by the glob); a file DuckDB cannot open or parse is refused the same way, by
name. The answer is then a 503, never a partial 200 (and, being an error, never cached). Left:
a directory unreadable only between the two checks, never before or after.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import TypeVar

import duckdb
import sqlglot

from signal_api.adapters.engine import Columns, Row
from signal_api.core.errors import (
    EngineError,
    EngineTimeoutError,
    EngineUnavailableError,
    LakeUnreadableError,
)
from signal_api.core.queries import Query, TableRead
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
    "array<bigint>": "BIGINT[]",
    "binary": "BLOB",
    "boolean": "BOOLEAN",
}
_TABLES = {table.name: table for table in ALL_TABLES}


_EMPTY_RECHECK_S = 5.0
_MAX_NAMED = 5  # unreadable directories named in one message (then "and N more")


@lru_cache(maxsize=512)
def to_duckdb(trino_sql: str) -> str:
    """The DuckDB form of a Trino query (sqlglot)."""
    return sqlglot.transpile(trino_sql, read="trino", write="duckdb")[0]


def _has_files(directory: Path) -> bool:
    return directory.is_dir() and any(directory.glob("dt=*/hour=*/*.parquet"))


def _empty_view_sql(table: LakeTable) -> str:
    """No data yet: an empty view with the right columns, so queries answer with no rows."""
    columns = ", ".join(
        f"CAST(NULL AS {_DUCKDB_TYPES[c.hive_type]}) AS {c.name}"
        for c in (*table.columns, *table.partition_keys)
    )
    return f"CREATE OR REPLACE VIEW {table.name} AS SELECT {columns} WHERE false"


def _view_sql(table: LakeTable, directory: Path) -> str:
    if _has_files(directory):
        pattern = str(directory / "dt=*" / "hour=*" / "*.parquet").replace("'", "''")
        return (
            f"CREATE OR REPLACE VIEW {table.name} AS SELECT * FROM read_parquet('{pattern}', "
            "hive_partitioning = true, hive_types = {'dt': VARCHAR, 'hour': INTEGER})"
        )
    return _empty_view_sql(table)


def _reason(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


def _entries(directory: str, *, listing: bool = True) -> list[os.DirEntry[str]] | None:
    """A directory's entries (none read unless `listing`), or None when there is no such
    directory; OSError when it exists but cannot be listed (read permission: opening it checks
    that) or entered (search permission): what DuckDB's glob needs, and silently does without."""
    try:
        with os.scandir(directory) as found:
            entries = list(found) if listing else []
    except (FileNotFoundError, NotADirectoryError):
        return None
    os.stat(os.path.join(directory, "."))  # resolving a name inside needs search permission
    return entries


def unreadable_partitions(
    root: str, read: TableRead, *, count_files: bool = False
) -> tuple[list[str], int]:
    """The directories of `read`'s table and of its partitions in range that exist but cannot
    be read (relative to the lake root, with the reason), and, if asked, the data files in the
    others (listing each partition costs more than opening it)."""
    problems: list[str] = []

    def listed(relative: str, *, listing: bool = True) -> list[os.DirEntry[str]]:
        try:
            return _entries(os.path.join(root, relative), listing=listing) or []
        except OSError as exc:
            problems.append(f"{relative} ({_reason(exc)})")
            return []

    files = 0
    for day in listed(read.table):
        dt_value = day.name.removeprefix("dt=")
        if dt_value == day.name or not read.first[0] <= dt_value <= read.last[0]:
            continue
        for hour_dir in listed(f"{read.table}/{day.name}"):
            hour = hour_dir.name.removeprefix("hour=")
            if not hour.isdigit() or not read.first <= (dt_value, int(hour)) <= read.last:
                continue
            data = listed(f"{read.table}/{day.name}/{hour_dir.name}", listing=count_files)
            files += sum(1 for entry in data if entry.name.endswith(".parquet"))
    return problems, files


def _named(items: list[str]) -> str:
    more = len(items) - _MAX_NAMED
    shown = ", ".join(items[:_MAX_NAMED])
    return f"{shown} and {more} more" if more > 0 else shown


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

    def _create_view(self, table: LakeTable) -> str | None:
        """(Re)create `table`'s view. If its files cannot be read the view is left empty and
        the reason returned: a query that reads files of the table is then refused."""
        directory = Path(local_path(table_uri(str(self._root), table)))
        try:
            sql = _view_sql(table, directory)
            self._conn.execute(sql)
        except (OSError, duckdb.Error) as exc:
            reason = self._relative(exc)
            log.warning("lake table unreadable", extra={"table": table.name, "error": reason})
            self._conn.execute(_empty_view_sql(table))
            self._empty.add(table.name)
            return reason
        if "read_parquet" in sql:
            self._empty.discard(table.name)
        else:
            self._empty.add(table.name)
        return None

    def _relative(self, exc: BaseException) -> str:
        """An error's first line, lake paths relative to the root (clients read it)."""
        lines = str(exc).strip().splitlines() or [type(exc).__name__]
        return lines[0].replace(str(self._root) + os.sep, "")

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

    def _check_root(self) -> None:
        try:
            missing = _entries(str(self._root), listing=False) is None
        except OSError as exc:
            raise LakeUnreadableError(
                f"lake root {self._root} cannot be read ({_reason(exc)})"
            ) from exc
        if missing:
            raise EngineUnavailableError(f"lake root {self._root} does not exist")

    def _check_reads(self, query: Query) -> None:
        """Refuse a query unless every partition it reads can be read; a table that had no
        files gets its real view at once when the query reads files of it."""
        problems: list[str] = []
        for read in query.reads:
            empty = read.table in self._empty
            unreadable, files = unreadable_partitions(str(self._root), read, count_files=empty)
            problems += unreadable
            if files and empty:
                with self._lock:
                    reason = self._create_view(_TABLES[read.table])
                if reason is not None:
                    problems.append(f"{read.table} ({reason})")
        if problems:
            named = _named(list(dict.fromkeys(problems)))
            log.warning("lake partitions unreadable", extra={"query": query.name, "error": named})
            raise LakeUnreadableError(f"query {query.name} cannot read {named}")

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
        self._check_root()
        self._check_reads(query)
        self._refresh_empty_views()
        sql = to_duckdb(query.sql)
        cursor = self._conn.cursor()  # one cursor per call: safe across threads
        timer = threading.Timer(self._timeout_s, cursor.interrupt)
        timer.start()
        try:
            result = fetch(cursor.execute(sql, list(query.params)))
        except duckdb.InterruptException as exc:
            raise EngineTimeoutError(
                f"query {query.name} exceeded {self._timeout_s:g} s and was cancelled"
            ) from exc
        except duckdb.Error as exc:
            # a listed file that could not be opened, or is no Parquet file (truncated, corrupt)
            if isinstance(exc, duckdb.IOException) or (
                isinstance(exc, duckdb.InvalidInputException) and str(self._root) in str(exc)
            ):
                reason = self._relative(exc)
                log.warning("lake read failed", extra={"query": query.name, "error": reason})
                raise LakeUnreadableError(f"query {query.name} cannot read: {reason}") from exc
            log.error("query failed", extra={"query": query.name, "error": str(exc)})
            raise EngineError(f"query {query.name} failed") from exc
        finally:
            timer.cancel()
            cursor.close()
        # again after the scan: a directory that became unreadable while the query ran was
        # skipped by DuckDB's glob (the soak benchmark's chmod mid-query found that race)
        self._check_reads(query)
        return result

    def close(self) -> None:
        """Close the DuckDB connection."""
        self._conn.close()
