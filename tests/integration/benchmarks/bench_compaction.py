"""Lake compaction benchmark: files, query time and bytes read before and after compaction.

1. Writes a lake as the processor does at its default 20 s trigger for N simulated hours
   (default 48): one file per table, hour partition and micro-batch for `events`, the five KPI
   tables (coverage_by_h3 too, #24) and `pipeline_batches`, every row with its batch's
   commit_seq; one commit head. The events fall in a metropolitan area (the H3 cells' density).
2. Before compaction: files per table-hour; the metrics API's uncached 24 h / 1 m and
   30 d / 1 h signal-strength requests (in-process app, DuckDB, no result cache; median of R);
   bytes read by the 24 h / 1 m query and by the same aggregation over the raw `events` columns
   (/proc/self/io rchar around each query); the reader rule's cost (the same query without it).
3. Runs one compaction pass (no grace, replaced files deleted at once) and times each
   partition's switch (read, merge, write the compacted file).
4. The same measurements after, and the lake's size per table before and after with the bytes
   per partial row (#24: lake growth). Never fails on timing; the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from fastapi.testclient import TestClient

from signal_api.adapters.duckdb_engine import DuckDBEngine
from signal_api.app import create_app
from signal_api.core import queries
from signal_api.core.params import Granularity, TimeRange
from signal_api.settings import ApiSettings
from signal_catalog.adapters.lake import LocalLake
from signal_catalog.operations import compaction
from signal_common.lake import (
    ALL_TABLES,
    EVENTS,
    PIPELINE_BATCHES,
    SIGNAL_STRENGTH_BY_OPERATOR,
    partition_path,
    table_arrow_schema,
)
from signal_common.quality import BAND_NAMES
from signal_testing.bands import band_indices
from signal_testing.fixture_lake import write_kpi_partials, write_table

TRIGGER_S = 20
OPERATORS = np.array(["Orange", "Proximus", "Base", "Telenet"])
NETWORKS = np.array(["2G", "3G", "4G", "5G"])
STATUSES = np.array(["IN_SERVICE", "OUT_OF_SERVICE", "EMERGENCY_ONLY", "POWER_OFF"])
BANDS = np.array(BAND_NAMES)


def hour_of_events(hour_start: dt.datetime, n: int, rng: np.random.Generator) -> pd.DataFrame:
    """One hour of events; each in the micro-batch of its arrival (0.1-5 s after the event)."""
    base = pd.Timestamp(hour_start)
    offset_us = np.sort(rng.integers(0, 3_600_000_000, n))
    arrival_us = offset_us + rng.integers(100_000, 5_000_000, n)
    hour_index = int(hour_start.timestamp()) // 3600
    batch = hour_index * (3600 // TRIGGER_S) + arrival_us // (TRIGGER_S * 1_000_000)
    net = rng.integers(0, len(NETWORKS), n)
    signal = rng.integers(-130, -50, n)
    band = band_indices(net, signal, NETWORKS)
    return pd.DataFrame(
        {
            "event_time": base + pd.to_timedelta(offset_us, unit="us"),
            "arrival_time": base + pd.to_timedelta(arrival_us, unit="us"),
            "operator": OPERATORS[rng.integers(0, len(OPERATORS), n)],
            "network_type": NETWORKS[net],
            "signal_dbm": signal,
            "provider": np.array(["gps", "network", "fused"])[rng.integers(0, 3, n)],
            "gps_precision_m": np.round(rng.uniform(1, 60, n), 2),
            "satellites": np.where(rng.random(n) < 0.2, np.nan, rng.integers(0, 20, n)),
            # a metropolitan area (about 15 x 18 km: 3,100 resolution-9 H3 cells), so a cell
            # sees events as an operator's busy areas do
            "latitude": rng.uniform(50.78, 50.92, n),
            "longitude": rng.uniform(4.25, 4.50, n),
            "postal_code": rng.integers(1000, 1200, n).astype(str),
            "status": STATUSES[rng.choice(4, n, p=[0.9, 0.05, 0.03, 0.02])],
            "batch_id": batch,
            "band": BANDS[band],
        }
    )


def write_events(root: Path, events: pd.DataFrame, rng: np.random.Generator) -> None:
    """The raw `events` table: one file per (event-time hour, batch), as the processor does."""
    n = len(events)
    ids = rng.integers(0, 2**62, n).astype(str)
    table = pd.DataFrame(
        {
            "event_id": ids,
            "device_id": rng.integers(0, 200_000, n).astype(str),
            "event_time": events["event_time"],
            "operator": events["operator"],
            "network_type": events["network_type"],
            "signal_dbm": events["signal_dbm"].astype("int32"),
            "provider": events["provider"],
            "gps_precision_m": events["gps_precision_m"],
            "latitude": events["latitude"],
            "longitude": events["longitude"],
            "postal_code": events["postal_code"],
            "status": events["status"],
            "activity": "STILL",
            "speed_kmh": np.round(rng.uniform(0, 120, n), 1),
            "satellites": events["satellites"].astype("Int32"),
            "cell_id": rng.integers(0, 2**28, n),
            "arrival_time": events["arrival_time"],
            "shard_id": "shardId-000000000000",
            "sequence_number": ids,
            "batch_id": events["batch_id"],
        }
    )
    write_table(root, EVENTS, table, "event_time", tag="r-bench-")


def write_batches(root: Path, events: pd.DataFrame) -> None:
    """`pipeline_batches`: one row and file per batch, in the hour of its batch time."""
    schema = table_arrow_schema(PIPELINE_BATCHES)
    for batch, part in events.groupby("batch_id"):
        batch_time = part["arrival_time"].max() + pd.Timedelta(seconds=1)
        row: dict[str, Any] = {c.name: None for c in PIPELINE_BATCHES.columns}
        row.update(
            batch_id=int(batch), batch_time=batch_time.to_pydatetime(), valid_rows=len(part),
            quarantined_rows=0, processing_ms=900, commit_seq=int(batch) + 1, compacted=False,
            max_event_time=part["event_time"].max().to_pydatetime(),
        )  # fmt: skip
        directory = root / partition_path(
            PIPELINE_BATCHES, batch_time.strftime("%Y-%m-%d"), batch_time.hour
        )
        directory.mkdir(parents=True, exist_ok=True)
        data = pa.Table.from_pylist([row], schema=schema)
        pq.write_table(data, directory / f"part-r-bench-{int(batch):012d}.parquet")


def write_lake(root: Path, start: dt.datetime, hours: int, rate: float, seed: int) -> int:
    """The whole lake, hour by hour; the number of events."""
    rng = np.random.default_rng(seed)
    total = 0
    last_batch = 0
    for h in range(hours):
        events = hour_of_events(start + dt.timedelta(hours=h), int(rate * 3600), rng)
        write_kpi_partials(root, events, tag="r-bench-")
        write_events(root, events, rng)
        write_batches(root, events)
        total += len(events)
        last_batch = max(last_batch, int(events["batch_id"].max()))
        print(f"  wrote hour {h + 1}/{hours}", end="\r", flush=True)
    (root / "_commits").mkdir(exist_ok=True)
    head = {"run_id": "r-bench", "batch_id": last_batch, "seq": last_batch + 1}
    (root / "_commits" / "r-bench.json").write_text(json.dumps(head))
    print()
    return total


def files_per_table_hour(root: Path, now: dt.datetime) -> dict[str, float]:
    """Mean data files per hour partition that has ended (the hours compaction may take)."""
    out = {}
    for table in ALL_TABLES:
        counts = []
        for d in (root / table.name).glob("dt=*/hour=*"):
            day = dt.datetime.strptime(d.parent.name[3:], "%Y-%m-%d").replace(tzinfo=dt.UTC)
            if day + dt.timedelta(hours=int(d.name[5:]) + 1) <= now:
                counts.append(len(list(d.glob("*.parquet"))))
        if counts:
            out[table.name] = statistics.mean(counts)
    return out


def table_sizes(root: Path) -> dict[str, tuple[int, int]]:
    """Per table: (bytes on disk, rows) of its Parquet files."""
    sizes = {}
    for table in ALL_TABLES:
        files = list((root / table.name).rglob("*.parquet"))
        rows = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
        sizes[table.name] = (sum(f.stat().st_size for f in files), rows)
    return sizes


def rchar() -> int:
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise RuntimeError("no rchar in /proc/self/io")


def bytes_read(engine: DuckDBEngine, query: queries.Query) -> int:
    before = rchar()
    engine.run(query)
    return rchar() - before


def raw_columns_query(window: TimeRange) -> queries.Query:
    """The 24 h / 1 m signal aggregation over the raw `events` columns (the baseline)."""
    b = queries._Builder()
    where = b.in_range("event_time", window)
    return b.query(
        "raw_signal_strength",
        f"""SELECT CAST(floor(to_unixtime(event_time) / 60) AS BIGINT) * 60 AS bucket,
               operator, network_type, COUNT(*) AS event_count, SUM(signal_dbm) AS signal_sum,
               MIN(signal_dbm) AS signal_min, MAX(signal_dbm) AS signal_max
            FROM {EVENTS.name} WHERE {where} GROUP BY 1, 2, 3 ORDER BY 1, 2, 3""",
    )


def without_reader_rule(query: queries.Query, window: TimeRange) -> queries.Query:
    """The signal query over the table itself (no compaction rule): the rule's cost."""
    b = queries._Builder()
    where = b.in_range("window_start", window)
    sql = query.sql[: query.sql.index(" FROM ")] + (
        f" FROM {SIGNAL_STRENGTH_BY_OPERATOR.name} WHERE {where} GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
    )
    return queries.Query("no_rule", sql, tuple(b.params))


def median_ms(fn: Any, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def measure(root: Path, end: dt.datetime, repeats: int) -> dict[str, float]:
    """API request times, bytes read and the reader rule's cost over the lake as it is now."""
    lake = f"file://{root}"
    settings = ApiSettings(engine="duckdb", lake_root=lake, auth_enabled=False, cache_ttl_s=0)
    engine = DuckDBEngine(lake)
    day = TimeRange(end - dt.timedelta(hours=24), end)
    month = TimeRange(end - dt.timedelta(days=30), end)
    signal_day = queries.signal_strength(day, Granularity.M1)
    figures: dict[str, float] = {}
    with TestClient(create_app(settings, engine)) as api:

        def request(window: TimeRange, granularity: str) -> None:
            params = {
                "from": window.start.isoformat(),
                "to": window.end.isoformat(),
                "granularity": granularity,
            }
            response = api.get("/v1/kpis/signal-strength", params=params)
            if response.status_code != 200:
                raise RuntimeError(f"API answered {response.status_code}: {response.text}")

        request(day, "1m")  # warm up (imports, sqlglot cache)
        figures["q24h_1m_ms"] = median_ms(lambda: request(day, "1m"), repeats)
        figures["q30d_1h_ms"] = median_ms(lambda: request(month, "1h"), repeats)
    figures["bytes_24h_1m"] = bytes_read(engine, signal_day)
    figures["bytes_raw_columns_24h_1m"] = bytes_read(engine, raw_columns_query(day))
    figures["bytes_ratio_vs_raw_columns"] = (
        figures["bytes_24h_1m"] / figures["bytes_raw_columns_24h_1m"]
    )
    plain = without_reader_rule(signal_day, day)
    figures["engine_24h_1m_ms"] = median_ms(lambda: engine.run(signal_day), repeats)
    figures["engine_24h_1m_no_rule_ms"] = median_ms(lambda: engine.run(plain), repeats)
    engine.close()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=int, default=48, help="simulated hours (>= 48 for 30 d)")
    parser.add_argument(
        "--rate",
        type=float,
        default=58.0,
        help="events per second (58: the metrics API benchmark's 10M events in 48 h)",
    )
    parser.add_argument("--repeats", type=int, default=5, help="requests per figure (median)")
    parser.add_argument("--lake", type=Path, default=None, help="keep the lake here")
    parser.add_argument("--quick", action="store_true", help="6 hours at 5 ev/s (a smoke run)")
    args = parser.parse_args()
    if args.quick:
        args.hours, args.rate, args.repeats = 6, 5.0, 3
    end = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0)
    start = end - dt.timedelta(hours=args.hours)
    work = Path(tempfile.mkdtemp(prefix="bench-compaction-"))
    root = (args.lake or work / "lake").resolve()
    root.mkdir(parents=True, exist_ok=True)
    try:
        print(f"writing {args.hours} h at {args.rate:g} ev/s, a file per batch of {TRIGGER_S} s")
        started = time.perf_counter()
        events = write_lake(root, start, args.hours, args.rate, seed=1)
        print(f"  {events:,} events in {time.perf_counter() - started:.0f} s")
        before_files = files_per_table_hour(root, dt.datetime.now(dt.UTC))
        before_sizes = table_sizes(root)
        before = measure(root, end, args.repeats)

        switches: list[float] = []
        last = [time.perf_counter()]

        def timed(_: compaction.PartitionCompaction) -> None:
            now = time.perf_counter()
            switches.append(now - last[0])
            last[0] = now

        started = time.perf_counter()
        result = compaction.compact(
            LocalLake(str(root)),
            ALL_TABLES,
            now=dt.datetime.now(dt.UTC),
            grace=dt.timedelta(0),
            reader_grace=dt.timedelta(0),
            on_partition=timed,
        )
        compaction_s = time.perf_counter() - started
        after_files = files_per_table_hour(root, dt.datetime.now(dt.UTC))
        after_sizes = table_sizes(root)
        after = measure(root, end, args.repeats)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    p50, worst = statistics.median(switches) * 1000, max(switches) * 1000
    print(f"\ncompaction: {result.written} partitions in {compaction_s:.1f} s; per partition "
          f"p50 {p50:.0f} ms, max {worst:.0f} ms")  # fmt: skip
    print(f"{'table':<30}{'files/hour before':>20}{'after':>10}")
    for table, n in before_files.items():
        print(f"{table:<30}{n:>20.1f}{after_files.get(table, 0):>10.1f}")
    print(f"{'table':<30}{'MB before':>12}{'MB after':>12}{'B/row after':>14}{'rows/event':>12}")
    for table, (size, rows) in after_sizes.items():
        print(
            f"{table:<30}{before_sizes[table][0] / 1e6:>12.2f}{size / 1e6:>12.2f}"
            f"{size / max(rows, 1):>14.1f}{rows / events:>12.4f}"
        )
    print(f"{'figure':<34}{'before':>14}{'after':>14}")
    for key in before:
        print(f"{key:<34}{before[key]:>14,.4g}{after[key]:>14,.4g}")
    summary = {
        "hours": args.hours,
        "events": events,
        "files_per_table_hour_before": round(statistics.mean(before_files.values()), 2),
        "files_per_table_hour_after": round(statistics.mean(after_files.values()), 2),
        "compaction_s": round(compaction_s, 2),
        "switch_ms_p50": round(statistics.median(switches) * 1000, 1),
        "switch_ms_max": round(max(switches) * 1000, 1),
        "q24h_1m_ms_before": round(before["q24h_1m_ms"], 1),
        "q24h_1m_ms_after": round(after["q24h_1m_ms"], 1),
        "q30d_1h_ms_before": round(before["q30d_1h_ms"], 1),
        "q30d_1h_ms_after": round(after["q30d_1h_ms"], 1),
        "bytes_24h_1m_before": before["bytes_24h_1m"],
        "bytes_24h_1m_after": after["bytes_24h_1m"],
        "bytes_ratio_vs_raw_columns_before": round(before["bytes_ratio_vs_raw_columns"], 5),
        "bytes_ratio_vs_raw_columns": round(after["bytes_ratio_vs_raw_columns"], 5),
        "lake_bytes_before": sum(size for size, _ in before_sizes.values()),
        "lake_bytes_after": sum(size for size, _ in after_sizes.values()),
        "bytes_per_partial_row_after": {
            table: round(size / max(rows, 1), 1)
            for table, (size, rows) in after_sizes.items()
            if table not in (EVENTS.name, PIPELINE_BATCHES.name)
        },
        "h3_bytes_share_after": round(
            after_sizes["coverage_by_h3"][0] / sum(size for size, _ in after_sizes.values()), 4
        ),
        "h3_rows_per_event_after": round(after_sizes["coverage_by_h3"][1] / events, 4),
        "reader_rule_ms_before": round(
            before["engine_24h_1m_ms"] - before["engine_24h_1m_no_rule_ms"], 1
        ),
        "reader_rule_ms_after": round(
            after["engine_24h_1m_ms"] - after["engine_24h_1m_no_rule_ms"], 1
        ),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
