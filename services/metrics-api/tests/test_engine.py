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
from signal_api.core.errors import EngineError, EngineTimeoutError
from signal_api.core.params import Granularity, TimeRange
from signal_common.lake import SIGNAL_STRENGTH_BY_OPERATOR, partition_path

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
        with pytest.raises(EngineError):
            eng.run(queries.signal_strength(touching, Granularity.H1))
        before = TimeRange(dt.datetime(2026, 11, 22, 23, 59, tzinfo=dt.UTC), inside.end)
        with pytest.raises(EngineError):
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
