"""The query layer: Trino text transpiles and runs, partitions prune, merges are real, timeouts."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pyarrow.dataset as ds
import pytest
import sqlglot

from signal_api.adapters.duckdb_engine import DuckDBEngine, to_duckdb
from signal_api.core import queries
from signal_api.core.errors import EngineTimeoutError, LakeUnreadableError
from signal_api.core.params import Granularity, TimeRange
from signal_api.core.queries import TableRead
from signal_common.lake import ALL_TABLES, SIGNAL_STRENGTH_BY_OPERATOR, partition_path

NOW = dt.datetime(2026, 11, 23, 1, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize("query", queries.all_example_queries(NOW), ids=lambda q: q.name)
def test_every_query_is_trino_and_runs_on_duckdb(engine: DuckDBEngine, query: Any) -> None:
    sqlglot.parse_one(query.sql, read="trino")  # valid Trino (Athena) syntax
    duck = to_duckdb(query.sql)
    assert duck.count("?") == query.sql.count("?") == len(query.params)
    rows = engine.run(query)
    assert isinstance(rows, list)


def test_every_query_prunes_on_dt_and_hour() -> None:
    for query in queries.all_example_queries(NOW):
        if query.name == "ping":
            continue
        assert "dt BETWEEN ? AND ?" in query.sql, query.name
        assert "hour >= ?" in query.sql, query.name
        assert "hour <= ?" in query.sql, query.name


def test_fixture_splits_windows_across_rows_and_files(lake: Path) -> None:
    """The fixture really exercises merging: many window+key pairs have several rows."""
    table = ds.dataset(
        lake / SIGNAL_STRENGTH_BY_OPERATOR.name, format="parquet", partitioning="hive"
    ).to_table()
    frame = table.to_pandas()
    rows_per_key = frame.groupby(["window_start", "operator", "network_type"]).size()
    assert (rows_per_key > 1).mean() > 0.2
    assert len(list((lake / SIGNAL_STRENGTH_BY_OPERATOR.name).glob("dt=*/hour=*/*.parquet"))) > 8


def test_partitions_outside_the_range_are_never_opened(lake: Path, tmp_path: Path) -> None:
    """A corrupt file in partitions outside the range does not matter: they are pruned."""
    root = tmp_path / "lake"
    source = lake / SIGNAL_STRENGTH_BY_OPERATOR.name
    target = root / SIGNAL_STRENGTH_BY_OPERATOR.name
    for path in source.glob("dt=*/hour=*/*.parquet"):
        dest = target / path.relative_to(source)
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(path.read_bytes())
    # (DuckDB binds a view's schema from the first file, so the corrupt ones come later.)
    for dt_value, hour in (("2026-11-22", 23), ("2026-11-23", 2), ("2026-11-24", 0)):
        bad = root / partition_path(SIGNAL_STRENGTH_BY_OPERATOR, dt_value, hour)
        bad.mkdir(parents=True, exist_ok=True)
        (bad / "part-corrupt.parquet").write_bytes(b"this is not parquet")
    eng = DuckDBEngine(root.as_uri(), threads=1)
    try:
        inside = TimeRange(
            dt.datetime(2026, 11, 23, 0, 0, tzinfo=dt.UTC),
            dt.datetime(2026, 11, 23, 2, 0, tzinfo=dt.UTC),
        )
        rows = eng.run(queries.signal_strength(inside, Granularity.H1))
        assert sum(r["event_count"] for r in rows) > 0
        touching = TimeRange(inside.start, dt.datetime(2026, 11, 23, 2, 1, tzinfo=dt.UTC))
        corrupt = "signal_strength_by_operator/dt=2026-11-23/hour=2/part-corrupt.parquet"
        with pytest.raises(LakeUnreadableError, match=f"cannot read: .*'{corrupt}'"):
            eng.run(queries.signal_strength(touching, Granularity.H1))
        before = TimeRange(dt.datetime(2026, 11, 22, 23, 59, tzinfo=dt.UTC), inside.end)
        with pytest.raises(LakeUnreadableError, match="dt=2026-11-22/hour=23/part-corrupt"):
            eng.run(queries.signal_strength(before, Granularity.H1))
    finally:
        eng.close()


def test_duckdb_query_past_timeout_is_interrupted(lake: Path) -> None:
    eng = DuckDBEngine(lake.as_uri(), threads=1, timeout_s=0.2)
    heavy = queries.Query(
        "heavy",
        "SELECT count(*) AS n FROM signal_strength_by_operator a "
        "CROSS JOIN signal_strength_by_operator b CROSS JOIN signal_strength_by_operator c "
        "WHERE a.signal_sum + b.signal_sum > c.signal_sum",
        (),
    )
    try:
        with pytest.raises(EngineTimeoutError):
            eng.run(heavy)
        assert eng.run(queries.ping()) == [{"ok": 1}]  # the engine is still usable
    finally:
        eng.close()


def test_every_query_names_the_partitions_it_reads() -> None:
    """What the engine checks before answering: each lake table in the query, with its bounds."""
    window = TimeRange(NOW - dt.timedelta(hours=2), NOW)
    names = {table.name for table in ALL_TABLES}
    for query in queries.all_example_queries(NOW):
        if query.name == "ping":
            assert query.reads == ()
            continue
        assert query.reads, query.name
        for read in query.reads:
            assert read.table in names, query.name
            assert f"FROM {read.table}" in query.sql, query.name
            assert (read.first, read.last) == (("2026-11-22", 23), ("2026-11-23", 0)), query.name
    totals = queries.window_totals(window)
    assert [r.table for r in totals.reads] == [
        "signal_strength_by_operator",
        "coverage_by_postal_code",
    ]


def test_a_table_gets_its_view_as_soon_as_a_query_reads_its_files(
    lake: Path, tmp_path: Path
) -> None:
    """A fresh lake answers with no rows; once a table's files exist the next query reads them
    (no stale empty view for the few seconds until the periodic recheck)."""
    eng = DuckDBEngine(tmp_path.as_uri(), threads=1)
    window = TimeRange(
        dt.datetime(2026, 11, 23, 0, 0, tzinfo=dt.UTC),
        dt.datetime(2026, 11, 23, 1, 0, tzinfo=dt.UTC),
    )
    query = queries.signal_strength(window, Granularity.H1)
    try:
        assert eng.run(query) == []
        hour = partition_path(SIGNAL_STRENGTH_BY_OPERATOR, "2026-11-23", 0)
        (tmp_path / hour).mkdir(parents=True)
        for path in (lake / hour).glob("*.parquet"):
            (tmp_path / hour / path.name).write_bytes(path.read_bytes())
        assert eng.run(query) == DuckDBEngine(lake.as_uri(), threads=1).run(query) != []
    finally:
        eng.close()


def test_partition_bounds_are_compared_as_dt_then_hour(tmp_path: Path) -> None:
    from signal_api.adapters.duckdb_engine import unreadable_partitions

    table = SIGNAL_STRENGTH_BY_OPERATOR.name
    for dt_value, hour in (("2026-11-22", 22), ("2026-11-22", 23), ("2026-11-23", 0)):
        directory = tmp_path / partition_path(table, dt_value, hour)
        directory.mkdir(parents=True)
        (directory / "part-0.parquet").write_bytes(b"")
    (tmp_path / table / "dt=2026-11-23" / "hour=x").mkdir()  # not a partition: ignored
    (tmp_path / table / "_commits").mkdir()
    read = TableRead(table, ("2026-11-22", 23), ("2026-11-23", 0))
    assert unreadable_partitions(str(tmp_path), read, count_files=True) == ([], 2)
    assert unreadable_partitions(str(tmp_path), read) == ([], 0)
    assert unreadable_partitions(str(tmp_path), TableRead("absent", read.first, read.last)) == (
        [],
        0,
    )
