"""Bytes per KPI partial row of the signal histogram: the lake's 131-bin array against a sparse map.

Writes the same partials (signal_testing.fixture_lake's events) in Parquet with zstd: without a
histogram (the baseline), with `signal_hist` as the lake's fixed `array<bigint>` of 131 bins
(-150..-20 dBm), and as a sparse `map<int,bigint>` (only the values that occur), each as the
processor writes them (one file per micro-batch of 10 minutes) and as compaction leaves them
(one file per hour, rows merged). Prints the figures and ends with one JSON line.

    ./pants run services/stream-processor/benchmarks:histogram_layout -- --events 100000
    (figures of 2026-12-02 in the processor README; --quick: 5,000 events)
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from signal_common.lake import (
    COVERAGE_BY_POSTAL_CODE,
    SIGNAL_STRENGTH_BY_OPERATOR,
    LakeTable,
    table_arrow_schema,
)
from signal_common.partials import SIGNAL_HIST_MIN, fold_partials
from signal_testing.fixture_lake import kpi_partials, make_events

LOW = SIGNAL_HIST_MIN


def _sparse(bins: list[int]) -> list[tuple[int, int]]:
    return [(LOW + i, count) for i, count in enumerate(bins) if count]


def _bytes(table: pa.Table, by: list[str]) -> int:
    """Parquet bytes of `table` written as one zstd file per distinct `by`."""
    total = 0
    frame_keys = table.select(by).to_pandas()
    for _, index in frame_keys.groupby(by).indices.items():
        sink = io.BytesIO()
        pq.write_table(table.take(pa.array(index)), sink, compression="zstd")
        total += sink.tell()
    return total


def _with_sparse(table: pa.Table) -> pa.Table:
    hists = table["signal_hist"].to_pylist()
    return table.drop_columns(["signal_hist"]).append_column(
        "signal_hist", pa.array([_sparse(h) for h in hists], pa.map_(pa.int32(), pa.int64()))
    )


def _figures(table: pa.Table, by: list[str], prefix: str) -> dict[str, float]:
    rows = table.num_rows
    without = _bytes(table.drop_columns(["signal_hist"]), by)
    dense = _bytes(table, by)
    sparse = _bytes(_with_sparse(table), by)
    return {
        f"{prefix}_rows": rows,
        f"{prefix}_bytes_per_row_without_histogram": without / rows,
        f"{prefix}_sparse_map_bytes_per_row": (sparse - without) / rows,
        f"{prefix}_dense_array_bytes_per_row": (dense - without) / rows,
        f"{prefix}_distinct_values_per_row": float(
            np.mean([sum(1 for c in h if c) for h in table["signal_hist"].to_pylist()])
        ),
    }


def measure(table: LakeTable, frame: pd.DataFrame) -> dict[str, float]:
    """Histogram bytes per row in the processor's files (one per batch) and in compacted ones."""
    frame = frame.assign(commit_seq=frame["batch_id"] + 1, compacted=False)
    written = pa.Table.from_pandas(
        frame[list(table.column_names)], schema=table_arrow_schema(table), preserve_index=False
    )
    written = written.append_column(
        "hour", pa.array(frame["window_start"].dt.floor("h"), pa.timestamp("us", tz="UTC"))
    )
    keys = [c.name for c in table.data_columns if c.merge == "key" and c.name != "batch_id"]
    measures = [c for c in table.data_columns if c.merge != "key"]
    compacted = fold_partials(written, [*keys, "hour"], measures)
    return {
        **_figures(written, ["batch_id", "hour"], "batch_files"),
        **_figures(compacted, ["hour"], "compacted_hours"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--hours", type=int, default=4)
    parser.add_argument("--quick", action="store_true", help="5,000 events (CI: it runs)")
    args = parser.parse_args()
    if args.quick:
        args.events = 5_000
    events = make_events(
        args.events, start=dt.datetime(2026, 11, 23, tzinfo=dt.UTC), hours=args.hours, seed=24
    )
    tables = kpi_partials(events)
    result = {}
    for table in (SIGNAL_STRENGTH_BY_OPERATOR, COVERAGE_BY_POSTAL_CODE):
        figures = measure(table, tables[table])
        result[table.name] = figures
        print(table.name)
        for name, value in figures.items():
            print(f"  {name}: {value:.1f}")
    print(json.dumps({"events": args.events, "hours": args.hours, **result}))


if __name__ == "__main__":
    main()
