"""Metrics API benchmark on a lake of >= 10M events (one uvicorn worker on 127.0.0.1).

1. Generates N raw events with numpy, hour by hour, and writes them to the lake layout twice:
   the raw `events` table, and `signal_strength_by_operator` partials computed from the same
   events (each event in one of two micro-batches, so window+key pairs span several rows).
2. Bytes read (/proc/self/io rchar around the query, same DuckDBEngine) by the API's 24 h / 1m
   signal-strength query vs the same aggregation over the raw `events` table.
3. Starts `signal_api.main` under uvicorn in a child process and measures uncached p50/p95 of
   24 h / 1m signal-strength requests (each with a distinct range, so none is cached), then
   cached req/s and p99 from an asyncio keep-alive loader with C concurrent connections.
Never fails on timing. The last line printed is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from signal_api.adapters.duckdb_engine import DuckDBEngine
from signal_api.core import queries
from signal_api.core.params import Granularity, TimeRange
from signal_common.lake import (
    EVENTS,
    SIGNAL_STRENGTH_BY_OPERATOR,
    partition_path,
    table_arrow_schema,
)
from signal_common.quality import BAND_NAMES, DEFAULT_BANDS

OPERATORS = np.array(["Orange", "Proximus", "Base", "Telenet"])
NETWORKS = np.array(["2G", "3G", "4G", "5G"])
PROVIDERS = np.array(["gps", "network", "fused"])
STATUSES = np.array(["IN_SERVICE", "OUT_OF_SERVICE", "EMERGENCY_ONLY", "POWER_OFF"])
ACTIVITIES = np.array(["STILL", "WALKING", "RUNNING", "ON_BICYCLE", "IN_VEHICLE", "UNKNOWN"])
START = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)


def _bands(network_idx: np.ndarray, signal: np.ndarray) -> np.ndarray:
    """Band index (0 excellent .. 3 poor) per event."""
    out = np.full(signal.shape, 3, dtype=np.int8)
    for i, net in enumerate(NETWORKS):
        b = DEFAULT_BANDS[str(net)]
        sel = network_idx == i
        s = signal[sel]
        out[sel] = np.select(
            [s >= b.excellent_min, s >= b.good_min, s >= b.fair_min], [0, 1, 2], default=3
        )
    return out


def write_hour(root: Path, hour_start: dt.datetime, n: int, rng: np.random.Generator) -> None:
    """One hour of raw events and the signal-strength partials computed from them."""
    base_us = int(hour_start.timestamp() * 1_000_000)
    t_us = np.sort(rng.integers(0, 3_600_000_000, n)) + base_us
    op = rng.integers(0, len(OPERATORS), n)
    net = rng.integers(0, len(NETWORKS), n)
    signal_dbm = rng.integers(-130, -50, n).astype(np.int32)
    dt_value, hour = hour_start.strftime("%Y-%m-%d"), hour_start.hour
    ids = pa.array(rng.integers(0, 2**62, n))
    events = pa.table(
        {
            "event_id": pc.cast(ids, pa.string()),
            "device_id": pc.cast(pa.array(rng.integers(0, 200_000, n)), pa.string()),
            "event_time": pa.array(t_us, pa.timestamp("us", tz="UTC")),
            "operator": pa.array(OPERATORS[op]),
            "network_type": pa.array(NETWORKS[net]),
            "signal_dbm": pa.array(signal_dbm),
            "provider": pa.array(PROVIDERS[rng.integers(0, 3, n)]),
            "gps_precision_m": pa.array(np.round(rng.uniform(1, 60, n), 2)),
            "latitude": pa.array(rng.uniform(49.5, 51.5, n)),
            "longitude": pa.array(rng.uniform(2.5, 6.4, n)),
            "postal_code": pc.cast(pa.array(rng.integers(1000, 1200, n)), pa.string()),
            "status": pa.array(STATUSES[rng.choice(4, n, p=[0.9, 0.05, 0.03, 0.02])]),
            "activity": pa.array(ACTIVITIES[rng.integers(0, 6, n)]),
            "speed_kmh": pa.array(np.round(rng.uniform(0, 120, n), 1)),
            "satellites": pa.array(rng.integers(0, 20, n).astype(np.int32)),
            "cell_id": pa.array(rng.integers(0, 2**28, n)),
            "arrival_time": pa.array(
                t_us + rng.integers(100_000, 5_000_000, n), pa.timestamp("us", tz="UTC")
            ),
            "shard_id": pa.array(
                np.array(["shardId-000000000000", "shardId-000000000001"])[rng.integers(0, 2, n)]
            ),
            "sequence_number": pc.cast(ids, pa.string()),
            "commit_seq": pa.array(np.ones(n, dtype=np.int64)),
            "compacted": pa.array(np.zeros(n, dtype=bool)),
        },
        schema=table_arrow_schema(EVENTS),
    )
    ev_dir = root / partition_path(EVENTS, dt_value, hour)
    ev_dir.mkdir(parents=True, exist_ok=True)
    pq.write_table(events, ev_dir / "part-00000.parquet")

    # partials per (minute, operator, network type, micro-batch)
    minute = (t_us - base_us) // 60_000_000
    batch = rng.integers(0, 2, n)
    n_op, n_net = len(OPERATORS), len(NETWORKS)
    key = ((batch * 60 + minute) * n_op + op) * n_net + net
    size = 2 * 60 * n_op * n_net
    count = np.bincount(key, minlength=size)
    ssum = np.bincount(key, weights=signal_dbm, minlength=size)
    smin = np.full(size, np.iinfo(np.int32).max)
    np.minimum.at(smin, key, signal_dbm)
    smax = np.full(size, np.iinfo(np.int32).min)
    np.maximum.at(smax, key, signal_dbm)
    band = _bands(net, signal_dbm)
    band_counts = [np.bincount(key[band == i], minlength=size) for i in range(len(BAND_NAMES))]
    present = np.nonzero(count)[0]
    k_net = present % n_net
    k_op = present // n_net % n_op
    k_min = present // (n_net * n_op) % 60
    k_batch = present // (n_net * n_op * 60)
    w_start = base_us + k_min * 60_000_000
    for b in (0, 1):
        sel = k_batch == b
        idx = present[sel]
        partial = pa.table(
            {
                "window_start": pa.array(w_start[sel], pa.timestamp("us", tz="UTC")),
                "window_end": pa.array(w_start[sel] + 60_000_000, pa.timestamp("us", tz="UTC")),
                "operator": pa.array(OPERATORS[k_op[sel]]),
                "network_type": pa.array(NETWORKS[k_net[sel]]),
                "event_count": pa.array(count[idx].astype(np.int64)),
                "signal_sum": pa.array(ssum[idx].astype(np.int64)),
                "signal_min": pa.array(smin[idx].astype(np.int32)),
                "signal_max": pa.array(smax[idx].astype(np.int32)),
                **{
                    f"band_{name}_count": pa.array(band_counts[i][idx].astype(np.int64))
                    for i, name in enumerate(BAND_NAMES)
                },
                "batch_id": pa.array(np.full(int(sel.sum()), b, dtype=np.int64)),
                "commit_seq": pa.array(np.full(int(sel.sum()), b + 1, dtype=np.int64)),
                "compacted": pa.array(np.zeros(int(sel.sum()), dtype=bool)),
            },
            schema=table_arrow_schema(SIGNAL_STRENGTH_BY_OPERATOR),
        )
        kpi_dir = root / partition_path(SIGNAL_STRENGTH_BY_OPERATOR, dt_value, hour)
        kpi_dir.mkdir(parents=True, exist_ok=True)
        pq.write_table(partial, kpi_dir / f"part-{b:05d}.parquet")


def rchar() -> int:
    """Bytes this process has read through read/pread syscalls so far."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise RuntimeError("no rchar in /proc/self/io")


def bytes_read(engine: DuckDBEngine, query: queries.Query) -> tuple[int, float, int]:
    """(bytes read, seconds, rows) of one query."""
    before, started = rchar(), time.perf_counter()
    rows = engine.run(query)
    return rchar() - before, time.perf_counter() - started, len(rows)


def raw_events_query(window: TimeRange) -> queries.Query:
    """The same 24 h / 1m aggregation as the API's query, over raw events (the baseline)."""
    q = queries.signal_strength(window, Granularity.M1)
    sql = (
        q.sql.replace("window_start", "event_time")
        .replace("SUM(event_count)", "COUNT(*)")
        .replace("SUM(signal_sum)", "SUM(signal_dbm)")
        .replace("MIN(signal_min)", "MIN(signal_dbm)")
        .replace("MAX(signal_max)", "MAX(signal_dbm)")
        .replace(SIGNAL_STRENGTH_BY_OPERATOR.name, EVENTS.name)
    )
    return queries.Query("raw_signal_strength", sql, q.params)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _request(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, path: str
) -> tuple[int, bytes]:
    writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    body = await reader.readexactly(length)
    return status, body


async def timed_sequential(port: int, paths: list[str]) -> list[float]:
    """Latency (s) of each request, one after the other on one connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    latencies = []
    for path in paths:
        started = time.perf_counter()
        status, _ = await _request(reader, writer, path)
        latencies.append(time.perf_counter() - started)
        if status != 200:
            raise RuntimeError(f"{path} answered {status}")
    writer.close()
    return latencies


async def load(port: int, path: str, *, connections: int, seconds: float) -> dict[str, float]:
    """Closed-loop load: `connections` keep-alive clients for `seconds`; req/s and latencies."""
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            status, _ = await _request(reader, writer, path)
            latencies.append(time.perf_counter() - started)
            errors += status != 200
        writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "requests": len(latencies),
        "errors": errors,
        "req_per_s": len(latencies) / elapsed,
        "p50_ms": latencies[len(latencies) // 2] * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000,
    }


def start_server(lake: Path, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "SIGNAL_API_ENGINE": "duckdb",
        "SIGNAL_API_LAKE_ROOT": lake.as_uri(),
        "SIGNAL_API_HOST": "127.0.0.1",
        "SIGNAL_API_PORT": str(port),
        "SIGNAL_API_AUTH_ENABLED": "false",
        "SIGNAL_API_RATE_LIMIT_PER_MINUTE": "100000000",
        "SIGNAL_API_RATE_LIMIT_BURST": "100000000",
        "SIGNAL_API_CACHE_TTL_S": "600",
        "SIGNAL_API_LOG_LEVEL": "WARNING",
        # the child imports exactly what this process imports (plain script or ./pants run)
        "PYTHONPATH": os.pathsep.join(p for p in sys.path if p),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "signal_api.main"], env=env, start_new_session=True
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("API did not start")


def iso(value: dt.datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--hours", type=int, default=48)
    parser.add_argument("--lake", type=Path, default=None, help="reuse/keep a lake here")
    parser.add_argument("--uncached-requests", type=int, default=30)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--load-seconds", type=float, default=10.0)
    parser.add_argument(
        "--quick", action="store_true",
        help="seconds, not minutes: 20,000 events over 26 h, 5 uncached requests, 2 s of load "
        "(CI: proves the script runs; the figures mean nothing)",
    )  # fmt: skip
    args = parser.parse_args()
    if args.quick:
        args.events, args.hours, args.uncached_requests = 20_000, 26, 5
        args.connections, args.load_seconds = 4, 2.0

    tmp = None
    if args.lake is None:
        tmp = Path(tempfile.mkdtemp(prefix="signal-api-bench-"))
        lake = tmp / "lake"
    else:
        lake = args.lake
    try:
        marker = lake / f".generated-{args.events}-{args.hours}"
        started = time.perf_counter()
        if not marker.exists():
            shutil.rmtree(lake, ignore_errors=True)
            rng = np.random.default_rng(42)
            per_hour = args.events // args.hours
            for h in range(args.hours):
                write_hour(lake, START + dt.timedelta(hours=h), per_hour, rng)
            marker.touch()
        generate_s = time.perf_counter() - started
        events_written = args.events // args.hours * args.hours
        print(f"lake: {events_written:,} events over {args.hours} h in {generate_s:.1f} s")

        # The 24 h window sits in the middle of the lake, so pruning has something to skip.
        end = START + dt.timedelta(hours=args.hours // 2 + 12)
        window = TimeRange(end - dt.timedelta(hours=24), end)
        engine = DuckDBEngine(lake.as_uri(), threads=1)
        engine.run(queries.ping())
        kpi_bytes, kpi_s, kpi_rows = bytes_read(
            engine, queries.signal_strength(window, Granularity.M1)
        )
        raw_bytes, raw_s, raw_rows = bytes_read(engine, raw_events_query(window))
        engine.close()
        raw_table_bytes = sum(p.stat().st_size for p in (lake / EVENTS.name).rglob("*.parquet"))
        print(
            f"bytes read, 24h/1m: KPI partials {kpi_bytes:,} ({kpi_s * 1000:.0f} ms, {kpi_rows}"
            f" rows) vs raw events {raw_bytes:,} ({raw_s * 1000:.0f} ms, {raw_rows} rows);"
            f" raw events table on disk {raw_table_bytes:,}"
        )

        port = free_port()
        server = start_server(lake, port)
        try:
            # uncached: each request a different 24 h range (so a different cache key)
            paths = [
                "/v1/kpis/signal-strength?granularity=1m"
                f"&from={iso(window.start - dt.timedelta(minutes=i + 1))}"
                f"&to={iso(window.end - dt.timedelta(minutes=i + 1))}"
                for i in range(args.uncached_requests + 2)
            ]
            uncached = sorted(asyncio.run(timed_sequential(port, paths))[2:])  # 2 warm-ups
            p50 = statistics.median(uncached) * 1000
            p95 = uncached[int(len(uncached) * 0.95) - 1] * 1000
            print(f"uncached 24h/1m signal-strength: p50 {p50:.1f} ms, p95 {p95:.1f} ms")

            dashboard = (
                "/v1/kpis/signal-strength?granularity=1m"
                f"&from={iso(end - dt.timedelta(hours=1))}&to={iso(end)}"
            )
            asyncio.run(timed_sequential(port, [dashboard]))  # fill the cache
            cached = asyncio.run(
                load(port, dashboard, connections=args.connections, seconds=args.load_seconds)
            )
            print(
                f"cached last-hour/1m signal-strength, {args.connections} connections: "
                f"{cached['req_per_s']:.0f} req/s, p50 {cached['p50_ms']:.1f} ms, "
                f"p99 {cached['p99_ms']:.1f} ms, errors {cached['errors']}"
            )
            cached_24h = asyncio.run(
                load(port, paths[-1], connections=4, seconds=min(5.0, args.load_seconds))
            )
            print(
                f"cached 24h/1m signal-strength, 4 connections: "
                f"{cached_24h['req_per_s']:.0f} req/s, p99 {cached_24h['p99_ms']:.1f} ms"
            )
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)

        result = {
            "events": events_written,
            "hours": args.hours,
            "uncached_24h_1m_p50_ms": round(p50, 2),
            "uncached_24h_1m_p95_ms": round(p95, 2),
            "cached_req_per_s": round(cached["req_per_s"], 1),
            "cached_p99_ms": round(cached["p99_ms"], 2),
            "cached_query": "signal-strength last hour, 1m",
            "cached_connections": args.connections,
            "cached_24h_req_per_s": round(cached_24h["req_per_s"], 1),
            "cached_24h_p99_ms": round(cached_24h["p99_ms"], 2),
            "kpi_bytes_read_24h": kpi_bytes,
            "raw_events_bytes_read_24h": raw_bytes,
            "bytes_ratio": round(kpi_bytes / raw_bytes, 5),
            "bytes_ratio_vs_raw_table": round(kpi_bytes / raw_table_bytes, 5),
            "kpi_query_ms": round(kpi_s * 1000, 1),
            "raw_query_ms": round(raw_s * 1000, 1),
        }
        print(json.dumps(result))
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
