"""Compaction: the pure merge rules on hand-computed rows, and whole passes over a local lake
checked against a pandas oracle of the events (DuckDB reads the lake through the reader rule)."""

from __future__ import annotations

import datetime as dt
import json
import math
import os
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import sqlglot
from typer.testing import CliRunner

from signal_catalog.adapters.lake import LocalLake
from signal_catalog.cli import app
from signal_catalog.core.compaction import (
    LakeFile,
    closed,
    merge_partials,
    plan_partition,
    visible_rows,
)
from signal_catalog.core.views import view_columns, view_name, view_sql
from signal_catalog.operations.compaction import CompactionResult, compact
from signal_common.lake import (
    COVERAGE_BY_CELL,
    COVERAGE_BY_H3,
    COVERAGE_BY_POSTAL_CODE,
    GPS_PRECISION_BY_PROVIDER,
    H3_RESOLUTIONS,
    KPI_TABLES,
    SIGNAL_STRENGTH_BY_OPERATOR,
    STATUS_COUNT,
    LakeTable,
    table_arrow_schema,
    visible_rows_sql,
    with_current_columns,
)
from signal_common.partials import (
    HLL_95_RELATIVE_ERROR,
    device_estimate,
    histogram_percentile,
    union_of,
)
from signal_testing.fixture_lake import make_events, with_h3_cells, write_kpi_partials

runner = CliRunner()
T0 = dt.datetime(2026, 11, 23, 6, 0, tzinfo=dt.UTC)
NOW = T0 + dt.timedelta(hours=12)
HOUR = dt.timedelta(hours=1)


def _status_rows(rows: list[tuple[str, str, int, int, bool]]) -> pa.Table:
    """status_count rows (postal_code, status, event_count, commit_seq, compacted) at 06:01."""
    schema = table_arrow_schema(STATUS_COUNT)
    start = T0 + dt.timedelta(minutes=1)
    return pa.Table.from_pylist(
        [
            {
                "window_start": start,
                "window_end": start + dt.timedelta(minutes=1),
                "postal_code": pc,
                "status": st,
                "event_count": n,
                "batch_id": seq - 1,
                "commit_seq": seq,
                "compacted": done,
            }
            for pc, st, n, seq, done in rows
        ],
        schema=schema,
    )


def test_merge_adds_sums_and_keeps_minima_and_maxima() -> None:
    schema = table_arrow_schema(SIGNAL_STRENGTH_BY_OPERATOR)
    start = T0

    def row(op: str, n: int, s: int, lo: int, hi: int, seq: int) -> dict[str, object]:
        bands = {f"band_{b}_count": 0 for b in ("excellent", "good", "fair", "poor")}
        bands["band_good_count"] = n
        return {
            "window_start": start,
            "window_end": start + dt.timedelta(minutes=1),
            "operator": op,
            "network_type": "4G",
            "event_count": n,
            "signal_sum": s,
            "signal_min": lo,
            "signal_max": hi,
            **bands,
            "batch_id": seq - 1,
            "commit_seq": seq,
            "compacted": False,
        }

    rows = pa.Table.from_pylist(
        [
            row("A", 2, -170, -90, -80, 1),
            row("A", 1, -70, -70, -70, 2),
            row("B", 3, -300, -110, -90, 2),
        ],
        schema=schema,
    )
    merged = merge_partials(SIGNAL_STRENGTH_BY_OPERATOR, rows, seq=2).to_pylist()
    assert [
        (r["operator"], r["event_count"], r["signal_sum"], r["signal_min"], r["signal_max"])
        for r in merged
    ] == [("A", 3, -240, -90, -70), ("B", 3, -300, -110, -90)]
    assert {
        (r["batch_id"], r["commit_seq"], r["compacted"], r["band_good_count"]) for r in merged
    } == {(-1, 2, True, 3)}


def test_readers_count_the_newest_compaction_and_the_rows_above_it() -> None:
    rows = _status_rows(
        [
            ("1000", "IN_SERVICE", 2, 1, False),  # replaced by both compactions
            ("1000", "IN_SERVICE", 3, 2, False),  # replaced by the second
            ("1000", "IN_SERVICE", 2, 1, True),  # first compaction (through 1)
            ("1000", "IN_SERVICE", 5, 2, True),  # second compaction (through 2)
            ("1000", "IN_SERVICE", 4, 3, False),  # late, after the second compaction
        ]
    )
    assert [r["event_count"] for r in visible_rows(rows).to_pylist()] == [5, 4]


def _files(names: list[str], age: dt.timedelta = dt.timedelta(0)) -> list[LakeFile]:
    return [LakeFile(f"/lake/{n}", n, NOW - age) for n in names]


def test_a_pass_folds_only_committed_rows_and_deletes_after_the_reader_grace() -> None:
    rows = _status_rows(
        [
            ("1000", "IN_SERVICE", 2, 1, False),
            ("1000", "IN_SERVICE", 3, 2, False),
            ("1000", "IN_SERVICE", 7, 3, False),  # batch 3 is still in flight
        ]
    )
    files = _files(["part-a.parquet", "part-b.parquet", "part-c.parquet"])
    seqs = {"/lake/part-a.parquet": 1, "/lake/part-b.parquet": 2, "/lake/part-c.parquet": 3}
    plan, data = plan_partition(
        STATUS_COUNT, files, rows, seqs, committed_seq=2, now=NOW, reader_grace=HOUR
    )
    assert plan.write == "compacted-000000000002.zstd.parquet"
    assert data is not None
    assert data["event_count"].to_pylist() == [5]
    assert (plan.delete, plan.pending_delete, plan.folded_files) == ((), 2, 2)

    # the next pass, once the compacted file is older than the reader grace, deletes a and b
    done = pa.concat_tables([rows, data])
    files = _files(["part-a.parquet", "part-b.parquet", "part-c.parquet"], age=2 * HOUR)
    files.append(LakeFile("/lake/c2", "compacted-000000000002.zstd.parquet", NOW - 2 * HOUR))
    plan, data = plan_partition(
        STATUS_COUNT, files, done, seqs, committed_seq=2, now=NOW, reader_grace=HOUR
    )
    assert data is None
    assert plan.delete == ("/lake/part-a.parquet", "/lake/part-b.parquet")


def test_an_hour_is_closed_once_it_ended_a_grace_period_ago() -> None:
    assert closed("2026-11-23", 6, now=T0 + 2 * HOUR, grace=HOUR)
    assert not closed("2026-11-23", 6, now=T0 + 2 * HOUR - dt.timedelta(seconds=1), grace=HOUR)
    assert not closed("2026-11-23", 7, now=T0 + 2 * HOUR, grace=HOUR)


# --- whole passes over a local lake ----------------------------------------------------------
def write_lake(root: Path, events: pd.DataFrame, *, tag: str, committed: int) -> None:
    write_kpi_partials(root, events, tag=f"{tag}-")
    heads = root / "_commits"
    heads.mkdir(parents=True, exist_ok=True)
    (heads / f"r-{tag}.json").write_text(json.dumps({"run_id": f"r-{tag}", "seq": committed}))


def duck_over(root: Path) -> duckdb.DuckDBPyConnection:
    """DuckDB with the signal-strength table over the lake directory (as the API reads it)."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    name = SIGNAL_STRENGTH_BY_OPERATOR.name
    con.execute(
        f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{root}/{name}/*/*/*.parquet', "
        "hive_partitioning = true, hive_types = {'dt': VARCHAR, 'hour': INTEGER})"
    )
    return con


def lake_figures(root: Path) -> pd.DataFrame:
    """Per minute × operator × network type, through the reader rule (what the API reads)."""
    con = duck_over(root)
    return con.execute(
        f"""SELECT window_start, operator, network_type, SUM(event_count)::BIGINT AS n,
                  SUM(signal_sum)::BIGINT AS s, MIN(signal_min) AS lo, MAX(signal_max) AS hi
           FROM {visible_rows_sql(SIGNAL_STRENGTH_BY_OPERATOR)}
           GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"""
    ).df()


def oracle(events: pd.DataFrame) -> pd.DataFrame:
    framed = events.assign(window_start=events["event_time"].dt.floor("min"))
    out = (
        framed.groupby(["window_start", "operator", "network_type"], as_index=False)
        .agg(
            n=("signal_dbm", "size"),
            s=("signal_dbm", "sum"),
            lo=("signal_dbm", "min"),
            hi=("signal_dbm", "max"),
        )
        .sort_values(["window_start", "operator", "network_type"], ignore_index=True)
    )
    return out


def assert_matches(got: pd.DataFrame, want: pd.DataFrame) -> None:
    """Same windows and keys, counts and sums exact, minima and maxima exact."""

    def records(frame: pd.DataFrame) -> list[tuple[object, ...]]:
        return [
            (pd.Timestamp(w).value, o, k, int(n), int(s), int(lo), int(hi))
            for w, o, k, n, s, lo, hi in frame[
                ["window_start", "operator", "network_type", "n", "s", "lo", "hi"]
            ].itertuples(index=False)
        ]

    assert records(got) == records(want)


def data_files(root: Path, table: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for p in (root / table).rglob("*.parquet"):
        counts[str(p.parent.relative_to(root))] = counts.get(str(p.parent.relative_to(root)), 0) + 1
    return counts


def run_pass(
    root: Path,
    *,
    now: dt.datetime = NOW,
    reader_grace: dt.timedelta = dt.timedelta(0),
    dry_run: bool = False,
) -> CompactionResult:
    return compact(
        LocalLake(str(root)),
        KPI_TABLES,
        now=now,
        grace=HOUR,
        reader_grace=reader_grace,
        dry_run=dry_run,
    )


def test_compaction_leaves_one_file_per_hour_and_every_figure_unchanged(tmp_path: Path) -> None:
    events = make_events(6000, start=T0, hours=4, seed=3)
    write_lake(tmp_path, events, tag="a", committed=int(events["batch_id"].max()) + 1)
    before = data_files(tmp_path, SIGNAL_STRENGTH_BY_OPERATOR.name)
    assert min(before.values()) == 6  # six 10-minute batches per hour
    assert_matches(lake_figures(tmp_path), oracle(events))

    dry = run_pass(tmp_path, dry_run=True)
    assert dry.written == len(KPI_TABLES) * 4  # one per table and hour
    assert data_files(tmp_path, SIGNAL_STRENGTH_BY_OPERATOR.name) == before
    result = run_pass(tmp_path)
    assert (result.written, result.deleted, result.open_partitions) == (
        len(KPI_TABLES) * 4, len(KPI_TABLES) * 4 * 6, 0,
    )  # fmt: skip
    after = data_files(tmp_path, SIGNAL_STRENGTH_BY_OPERATOR.name)
    assert set(after) == set(before)
    assert set(after.values()) == {1}
    assert_matches(lake_figures(tmp_path), oracle(events))
    assert run_pass(tmp_path).written == 0  # nothing new: a no-op


def test_late_events_into_a_compacted_hour_count_at_once_and_are_folded_next(
    tmp_path: Path,
) -> None:
    events = make_events(3000, start=T0, hours=2, seed=5)
    write_lake(tmp_path, events, tag="a", committed=int(events["batch_id"].max()) + 1)
    run_pass(tmp_path)
    late = make_events(500, start=T0, hours=2, seed=6).assign(batch_id=40)  # seq 41
    write_lake(tmp_path, late, tag="b", committed=41)
    everything = pd.concat([events, late], ignore_index=True)
    assert_matches(lake_figures(tmp_path), oracle(everything))  # before any new compaction
    assert_sketch_columns_match(tmp_path, everything)  # compacted rows + late rows (#24)

    result = run_pass(tmp_path, reader_grace=HOUR)  # keeps what it replaces for an hour
    assert result.written == len(KPI_TABLES) * 2
    assert result.pending_delete == len(KPI_TABLES) * 2 * 2
    assert_matches(lake_figures(tmp_path), oracle(everything))  # old and new files side by side
    assert run_pass(tmp_path, reader_grace=HOUR).deleted == 0  # the grace has not passed
    two_hours_earlier = (NOW - 2 * HOUR).timestamp()
    for p in tmp_path.rglob("compacted-*.parquet"):  # as if written two hours before NOW
        os.utime(p, (two_hours_earlier, two_hours_earlier))
    result = run_pass(tmp_path, reader_grace=HOUR)
    assert (result.written, result.deleted) == (0, len(KPI_TABLES) * 2 * 2)
    assert set(data_files(tmp_path, SIGNAL_STRENGTH_BY_OPERATOR.name).values()) == {1}
    assert_matches(lake_figures(tmp_path), oracle(everything))
    assert_sketch_columns_match(tmp_path, everything)  # folded into one file per hour


def test_rows_of_batches_not_committed_yet_are_left_alone(tmp_path: Path) -> None:
    events = make_events(2000, start=T0, hours=1, seed=8)
    last = int(events["batch_id"].max())
    write_lake(tmp_path, events, tag="a", committed=last)  # the last batch is in flight
    run_pass(tmp_path)
    files = sorted(p.name for p in (tmp_path / STATUS_COUNT.name).rglob("*.parquet"))
    assert len(files) == 2
    assert files[0] == f"compacted-{last:012d}.zstd.parquet"
    assert files[1].startswith(f"part-a-{last:05d}")
    assert_matches(lake_figures(tmp_path), oracle(events))


def test_hours_that_ended_less_than_the_grace_ago_are_not_touched(tmp_path: Path) -> None:
    events = make_events(500, start=NOW - HOUR, hours=1, seed=9)  # ended at NOW: still open
    write_lake(tmp_path, events, tag="a", committed=100)
    result = run_pass(tmp_path)
    assert result.written == 0
    assert result.open_partitions == len(KPI_TABLES)


def view_figures(root: Path) -> pd.DataFrame:
    """The signal-strength per-minute view (Athena's SQL, transpiled to DuckDB) over the lake."""
    con = duck_over(root)
    sql = sqlglot.transpile(view_sql(SIGNAL_STRENGTH_BY_OPERATOR), read="trino", write="duckdb")
    con.execute(f"CREATE VIEW {view_name(SIGNAL_STRENGTH_BY_OPERATOR)} AS {sql[0]}")
    return con.execute(
        f"SELECT * FROM {view_name(SIGNAL_STRENGTH_BY_OPERATOR)} "
        "ORDER BY window_start, operator, network_type"
    ).df()


def assert_view_matches(got: pd.DataFrame, events: pd.DataFrame) -> None:
    """Per minute and key: counts and band counts exact, the average to 1e-9, min and max."""
    framed = events.assign(window_start=events["event_time"].dt.floor("min"))
    want = (
        framed.groupby(["window_start", "operator", "network_type"], as_index=False)
        .agg(
            event_count=("signal_dbm", "size"),
            signal_avg=("signal_dbm", "mean"),
            signal_min=("signal_dbm", "min"),
            signal_max=("signal_dbm", "max"),
            band_poor_count=("band", lambda b: int((b == "poor").sum())),
        )
        .sort_values(["window_start", "operator", "network_type"], ignore_index=True)
    )
    assert list(got.columns) == [c.name for c in view_columns(SIGNAL_STRENGTH_BY_OPERATOR)]
    assert [pd.Timestamp(w).value for w in got["window_start"]] == [
        pd.Timestamp(w).value for w in want["window_start"]
    ]
    for column in ("event_count", "band_poor_count", "signal_min", "signal_max"):
        assert got[column].astype("int64").tolist() == want[column].astype("int64").tolist()
    assert np.allclose(got["signal_avg"], want["signal_avg"], rtol=0, atol=1e-9)


def test_the_per_minute_view_matches_the_oracle_before_and_after_compaction(
    tmp_path: Path,
) -> None:
    events = make_events(4000, start=T0, hours=2, seed=12)
    write_lake(tmp_path, events, tag="a", committed=int(events["batch_id"].max()) + 1)
    assert_view_matches(view_figures(tmp_path), events)
    run_pass(tmp_path, reader_grace=HOUR)  # compacted files next to the ones they replace
    assert_view_matches(view_figures(tmp_path), events)
    late = make_events(300, start=T0, hours=2, seed=13).assign(batch_id=90)
    write_lake(tmp_path, late, tag="b", committed=91)
    assert_view_matches(view_figures(tmp_path), pd.concat([events, late], ignore_index=True))


def test_compact_command_reports_a_dry_run_then_compacts(tmp_path: Path) -> None:
    events = make_events(3000, start=T0, hours=2, seed=21)
    write_lake(tmp_path, events, tag="a", committed=int(events["batch_id"].max()) + 1)
    before = sorted(p.name for p in tmp_path.rglob("*.parquet"))
    env = {"SIGNAL_CATALOG_LAKE_ROOT": f"file://{tmp_path}", "COLUMNS": "200"}

    dry = runner.invoke(app, ["compact", "--dry-run"], env=env)
    assert dry.exit_code == 0, dry.output
    assert "dry run: nothing written or deleted" in dry.stdout
    assert f"{len(KPI_TABLES) * 2} partition(s) compacted" in dry.stdout
    assert sorted(p.name for p in tmp_path.rglob("*.parquet")) == before

    done = runner.invoke(app, ["compact", "--reader-grace", "0"], env=env)
    assert done.exit_code == 0, done.output
    compacted = len(KPI_TABLES) * 2  # tables x hours
    assert f"{compacted} partition(s) compacted, {compacted * 6} replaced file(s) deleted" in (
        done.stdout
    )
    assert set(data_files(tmp_path, STATUS_COUNT.name).values()) == {1}
    assert_matches(lake_figures(tmp_path), oracle(events))


def test_compact_command_errors_are_one_sentence(tmp_path: Path) -> None:
    env = {"SIGNAL_CATALOG_LAKE_ROOT": f"file://{tmp_path}/nowhere", "COLUMNS": "200"}
    missing = runner.invoke(app, ["compact"], env=env)
    assert missing.exit_code == 4
    assert next(line for line in missing.stderr.splitlines() if line.strip()).startswith(
        "error: lake root file://"
    )
    bad = runner.invoke(app, ["compact", "--grace", "-5"], env=env)
    assert bad.exit_code == 2
    assert bad.stderr.strip() == "error: --grace and --reader-grace must be 0 or more seconds"


# --- #24: histograms, sums of squares and device sketches through compaction ------------------
def visible_partials(root: Path, table: LakeTable) -> pd.DataFrame:
    """Every partition's rows a reader counts (the reader rule, in Arrow), in the table's
    current layout (an older file's missing columns as null)."""
    frames = []
    for directory in sorted({p.parent for p in (root / table.name).rglob("*.parquet")}):
        parts = [with_current_columns(table, pq.read_table(p)) for p in directory.glob("*.parquet")]
        frames.append(visible_rows(pa.concat_tables(parts)).to_pandas())
    return pd.concat(frames, ignore_index=True)


def _union_estimate(sketches: pd.Series) -> float | None:
    values = list(sketches)
    united = union_of(values)
    return None if united is None else device_estimate(united)


def _nearest_rank(values: pd.Series, p: int) -> int:
    return int(np.sort(values.to_numpy())[math.ceil(p * len(values) / 100) - 1])


def assert_sketch_columns_match(root: Path, events: pd.DataFrame) -> None:
    """Per minute and key, and per operator over everything: the signal histogram equals the
    raw values' counts and gives their nearest-rank p10/p50/p90, sums of squares are exact
    (integers) or to 1e-9 (doubles), distinct devices within the sketch's 95 % bound."""
    framed = events.assign(window_start=events["event_time"].dt.floor("min"))
    # each event once per resolution, placed by h3 itself, in its hour (the table's window)
    hexagons = with_h3_cells(framed).assign(window_start=lambda f: f["event_time"].dt.floor("h"))
    checks = [
        (SIGNAL_STRENGTH_BY_OPERATOR, ["window_start", "operator", "network_type"], "signal_dbm"),
        (SIGNAL_STRENGTH_BY_OPERATOR, ["operator"], "signal_dbm"),
        (COVERAGE_BY_POSTAL_CODE, ["window_start", "postal_code"], "signal_dbm"),
        (GPS_PRECISION_BY_PROVIDER, ["window_start", "provider"], "gps_precision_m"),
        (STATUS_COUNT, ["window_start", "postal_code", "status"], None),
        (COVERAGE_BY_H3, ["window_start", "h3_resolution", "h3_cell"], "signal_dbm"),
        (COVERAGE_BY_H3, ["h3_resolution", "h3_cell"], "signal_dbm"),
    ]
    for table, keys, measure in checks:
        got = visible_partials(root, table).groupby(keys)
        want = (hexagons if table is COVERAGE_BY_H3 else framed).groupby(keys)
        assert set(got.groups) == set(want.groups), table.name
        estimates = got["devices_hll"].apply(_union_estimate)
        exact = want["device_id"].nunique().reindex(estimates.index)  # nulls not counted
        assert ((estimates - exact).abs() <= HLL_95_RELATIVE_ERROR * exact).all(), table.name
        if measure == "signal_dbm":
            squares = want[measure].apply(lambda s: int((s.astype("int64") ** 2).sum()))
            assert got["signal_sq_sum"].sum().astype("int64").to_dict() == squares.to_dict()
            for key, hists in got["signal_hist"]:
                merged = np.sum(np.stack(hists.to_numpy()), axis=0)
                values = want.get_group(key)[measure]
                assert merged.tolist() == np.bincount(values + 150, minlength=131).tolist(), key
                for p in (10, 50, 90):
                    assert histogram_percentile(merged.tolist(), p) == _nearest_rank(values, p)
        elif measure is not None:
            squares = want[measure].apply(lambda s: float((s.astype("float64") ** 2).sum()))
            got_squares = got["precision_sq_sum"].sum().reindex(squares.index)
            assert np.allclose(got_squares, squares, rtol=1e-9, atol=0)


_ADDED_BY_24 = ("signal_sq_sum", "signal_hist", "precision_sq_sum", "devices_hll")


def test_a_file_written_before_the_new_columns_makes_its_groups_unknown_never_zero(
    tmp_path: Path,
) -> None:
    events = make_events(1500, start=T0, hours=1, seed=26)
    write_lake(tmp_path, events, tag="a", committed=int(events["batch_id"].max()) + 1)
    old_keys = {}  # per table, the (window, key) groups the old file has rows of
    for table in KPI_TABLES:  # the hour's first batch as the processor wrote it before #24
        old = next(p for p in (tmp_path / table.name).rglob("part-a-00000-*.parquet"))
        data = pq.read_table(old)
        pq.write_table(data.drop_columns([c for c in _ADDED_BY_24 if c in data.column_names]), old)
        keys = [c.name for c in table.data_columns if c.merge == "key" and c.name != "batch_id"]
        old_keys[table.name] = (keys, set(data.select(keys).to_pandas().itertuples(index=False)))

    result = run_pass(tmp_path)
    assert result.written == len(KPI_TABLES)
    for table in KPI_TABLES:
        rows = visible_partials(tmp_path, table)
        assert rows["compacted"].all()
        assert len(rows) > 0
        keys, groups = old_keys[table.name]
        unknown = pd.Series([tuple(k) in groups for k in rows[keys].itertuples(index=False)])
        unknown.index = rows.index
        assert unknown.any()
        assert (~unknown).any()
        assert rows.loc[unknown, "devices_hll"].isna().all(), table.name
        assert rows.loc[~unknown, "devices_hll"].notna().all(), table.name
        for column in ("signal_sq_sum", "signal_hist", "precision_sq_sum"):
            if column in rows.columns:
                assert rows.loc[unknown, column].isna().all(), (table.name, column)
                assert rows.loc[~unknown, column].notna().all(), (table.name, column)
        # every column that existed before is still exact (coverage_by_h3 counts each event
        # once per resolution, coverage_by_cell the events that report a cell)
        expected = {
            COVERAGE_BY_H3.name: len(events) * len(H3_RESOLUTIONS),
            COVERAGE_BY_CELL.name: int(events["cell_id"].notna().sum()),
        }.get(table.name, len(events))
        assert int(rows["event_count"].sum()) == expected
    assert_matches(lake_figures(tmp_path), oracle(events))


def test_the_per_minute_view_gives_the_exact_median_before_and_after_compaction(
    tmp_path: Path,
) -> None:
    """`signal_p50` is Athena SQL (Trino's array and lambda functions: sequence, transform,
    reduce, slice, filter, cardinality; https://trino.io/docs/current/functions/array.html and
    lambda.html, which Athena engine 3 runs: "Functions in Athena engine version 3 are based on
    Trino", https://docs.aws.amazon.com/athena/latest/ug/functions-env3.html), parsed by sqlglot's
    trino dialect and run here on DuckDB through sqlglot, against the nearest-rank median of the
    raw events of each minute and key."""
    events = make_events(2500, start=T0, hours=2, seed=27)
    write_lake(tmp_path, events, tag="a", committed=int(events["batch_id"].max()) + 1)
    late = make_events(300, start=T0, hours=2, seed=28).assign(batch_id=90)
    everything = pd.concat([events, late], ignore_index=True)
    keys = ["window_start", "operator", "network_type"]

    def check(frame: pd.DataFrame) -> None:
        framed = frame.assign(window_start=frame["event_time"].dt.floor("min"))
        want = framed.groupby(keys)["signal_dbm"].apply(lambda v: _nearest_rank(v, 50))
        got = view_figures(tmp_path)
        assert list(got.columns) == [c.name for c in view_columns(SIGNAL_STRENGTH_BY_OPERATOR)]
        got_p50 = {
            (pd.Timestamp(w).value, o, n): int(p)
            for w, o, n, p in got[[*keys, "signal_p50"]].itertuples(index=False)
        }
        assert got_p50 == {(pd.Timestamp(w).value, o, n): p for (w, o, n), p in want.items()}

    check(events)
    run_pass(tmp_path, reader_grace=HOUR)
    check(events)
    write_lake(tmp_path, late, tag="b", committed=91)  # late rows beside the compacted ones
    check(everything)
