"""Stream-processor benchmark: drain rate vs job throughput, and end-to-end freshness.

In one run, against a kinesalite it starts itself (4 shards):
  1. drain_rps  - the endpoint's raw GetRecords drain rate over N events (the baseline): the
                  faster of a boto3 loop and a json+base64 loop, one thread per shard;
  2. job_rps    - the job's sustained throughput on local[2] over the same N events;
  3. freshness  - a producer puts a steady R events/s for D seconds while the job runs with a
                  20 s trigger; for every event, (time the KPI row covering it is in the lake)
                  - (time it was put), from the KPI file's mtime and the event's arrival time.
Prints figures, then one JSON object as the last line:
  {"drain_rps", "job_rps", "ratio", "fresh_p50_s", "fresh_p95_s", ...}
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import boto3
import duckdb

from signal_local.endpoints import FAKE_CREDENTIALS, start_kinesalite
from signal_processor.adapters.kinesis_source import ShardReader, SourceOptions, decode_record
from signal_processor.job import build_session, start_query
from signal_processor.settings import ProcessorSettings

OPERATORS = ("Movistar", "Vodafone", "Orange", "Yoigo")
NETWORKS = ("2G", "3G", "4G", "5G")


def event_payload(rng: random.Random, when: dt.datetime) -> bytes:
    """One realistic, valid event (JSON) at `when`."""
    event = {
        "event_id": uuid.UUID(int=rng.getrandbits(128)).hex,
        "device_id": f"dev-{rng.randrange(5000)}",
        "event_time": when.isoformat(),
        "operator": rng.choice(OPERATORS),
        "network_type": rng.choice(NETWORKS),
        "signal_dbm": rng.randint(-125, -55),
        "provider": rng.choice(("gps", "network", "fused")),
        "gps_precision_m": round(rng.uniform(2, 900), 2),
        "latitude": round(40.3 + rng.random() / 5, 6),
        "longitude": round(-3.8 + rng.random() / 5, 6),
        "postal_code": f"28{rng.randrange(100):03d}",
        "status": rng.choice(("IN_SERVICE",) * 8 + ("OUT_OF_SERVICE", "EMERGENCY_ONLY")),
        "activity": rng.choice(("STILL", "WALKING", "IN_VEHICLE")),
        "speed_kmh": round(rng.uniform(0, 120), 1),
        "satellites": rng.randint(0, 20),
        "cell_id": rng.randrange(1, 2**28),
    }
    return json.dumps(event, separators=(",", ":")).encode()


def put(client: Any, stream: str, payloads: list[bytes]) -> None:
    for start in range(0, len(payloads), 500):
        records = [
            {"Data": p, "PartitionKey": f"k{(start + i) % 997}"}
            for i, p in enumerate(payloads[start : start + 500])
        ]
        while records:
            response = client.put_records(StreamName=stream, Records=records)
            records = [
                r for r, res in zip(records, response["Records"], strict=True) if "ErrorCode" in res
            ]


def drain_rate(url: str, stream: str, expected: int, *, lean: bool) -> float:
    """Records/s of a tight GetRecords loop over every shard (one thread per shard).

    lean=False drains with boto3's get_records; lean=True with the source's ShardReader (the
    same signed call, parsed with json + base64), so the baseline is the endpoint's rate and not
    botocore's parser.
    """
    client = boto3.client("kinesis", endpoint_url=url, region_name="us-east-1")
    shards = [s["ShardId"] for s in client.list_shards(StreamName=stream)["Shards"]]
    counts = [0] * len(shards)

    def drain(i: int, shard: str) -> None:
        if lean:
            local: Any = ShardReader(SourceOptions(stream, "unused", endpoint_url=url))
        else:
            local = boto3.client("kinesis", endpoint_url=url, region_name="us-east-1")
        iterator = local.get_shard_iterator(
            StreamName=stream, ShardId=shard, ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while iterator:
            response = local.get_records(ShardIterator=iterator, Limit=10_000)
            records = response["Records"]
            if lean:
                for record in records:
                    decode_record(record)
            counts[i] += len(records)
            if not records and response.get("MillisBehindLatest", 0) == 0:
                break
            iterator = response.get("NextShardIterator")

    started = time.perf_counter()
    threads = [threading.Thread(target=drain, args=(i, s)) for i, s in enumerate(shards)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    assert sum(counts) == expected, (sum(counts), expected)
    return expected / elapsed


def lake_sql(lake: Path, sql: str) -> list[tuple[Any, ...]]:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    return con.execute(sql.replace("{lake}", str(lake))).fetchall()


def rows_in(lake: Path) -> int:
    try:
        return int(
            lake_sql(
                lake,
                "SELECT coalesce(sum(rows_in), 0) "
                "FROM read_parquet('{lake}/pipeline_batches/**/*.parquet')",
            )[0][0]
        )
    except duckdb.IOException:
        return 0


def settings_for(stream: str, url: str, work: Path, name: str, trigger: float) -> ProcessorSettings:
    return ProcessorSettings(
        stream_name=stream,
        kinesis_endpoint_url=url,
        lake_root=f"file://{work}/{name}/lake",
        checkpoint_location=f"file://{work}/{name}/checkpoint",
        trigger_seconds=trigger,
        max_records_per_batch=100_000,
        shuffle_partitions=2,
        spark_master="local[2]",
        log_json=False,
    )


def job_throughput(spark: Any, stream: str, url: str, work: Path, n: int) -> tuple[float, float]:
    """(overall, sustained) records/s of the job draining `n` records.

    Overall counts from query start (JVM warm-up, first planning); sustained counts the batches
    after the first, from the end of the first batch to the end of the last.
    """
    settings = settings_for(stream, url, work, "throughput", trigger=0.1)
    lake = work / "throughput" / "lake"
    started = time.perf_counter()
    query = start_query(spark, settings)
    try:
        while rows_in(lake) < n:
            if query.exception():
                raise RuntimeError(query.exception())
            time.sleep(0.5)
        elapsed = time.perf_counter() - started
    finally:
        query.stop()
    batches = lake_sql(
        lake,
        "SELECT epoch(batch_time), rows_in "
        "FROM read_parquet('{lake}/pipeline_batches/**/*.parquet') "
        "WHERE rows_in > 0 ORDER BY batch_id",
    )
    sustained = n / elapsed
    if len(batches) >= 2:
        later = sum(int(r[1]) for r in batches[1:])
        sustained = later / (float(batches[-1][0]) - float(batches[0][0]))
    for when, count in batches:
        print(f"  batch of {count} records ended at {when:.1f}", flush=True)
    return n / elapsed, sustained


def freshness(
    spark: Any, client: Any, url: str, work: Path, rate: int, seconds: int
) -> list[float]:
    stream = "bench-fresh"
    client.create_stream(StreamName=stream, ShardCount=4)
    client.get_waiter("stream_exists").wait(StreamName=stream, WaiterConfig={"Delay": 1})
    settings = settings_for(stream, url, work, "fresh", trigger=20.0)
    lake = work / "fresh" / "lake"
    query = start_query(spark, settings)
    rng = random.Random(3)
    stop_at = time.monotonic() + seconds
    sent = 0
    tick = 0.25
    next_tick = time.monotonic()
    while time.monotonic() < stop_at:
        now = dt.datetime.now(dt.UTC)
        put(client, stream, [event_payload(rng, now) for _ in range(int(rate * tick))])
        sent += int(rate * tick)
        next_tick += tick
        time.sleep(max(0.0, next_tick - time.monotonic()))
    print(f"  freshness producer: {sent} events at {rate}/s for {seconds}s", flush=True)
    deadline = time.monotonic() + 120
    while rows_in(lake) < sent and time.monotonic() < deadline:
        time.sleep(1)
    query.stop()
    # when each batch's KPI rows landed: the mtime of its signal_strength_by_operator files
    landed: dict[int, float] = {}
    for manifest in (lake / "_batches" / "signal_strength_by_operator").glob("*.json"):
        files = json.loads(manifest.read_text())["files"]
        if files:
            landed[int(manifest.stem)] = max(
                os.stat(f.removeprefix("file://")).st_mtime for f in files
            )
    latencies: list[float] = []
    for batch_id, mtime in landed.items():
        rows = lake_sql(
            lake,
            "SELECT epoch(arrival_time) "
            f"FROM read_parquet('{{lake}}/events/**/part-{batch_id:012d}-*.parquet')",
        )
        latencies.extend(mtime - float(r[0]) for r in rows)
    return latencies


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=300_000, help="events for drain/throughput")
    parser.add_argument("--rate", type=int, default=2_000, help="freshness producer events/s")
    parser.add_argument(
        "--seconds", type=int, default=180, help="freshness run length (0: skip freshness)"
    )
    args = parser.parse_args(argv)
    os.environ.update(FAKE_CREDENTIALS)
    work = Path(tempfile.mkdtemp(prefix="bench-processor-"))
    kinesalite = start_kinesalite(work / "logs")
    try:
        client = boto3.client("kinesis", endpoint_url=kinesalite.url, region_name="us-east-1")
        client.create_stream(StreamName="bench", ShardCount=4)
        client.get_waiter("stream_exists").wait(StreamName="bench", WaiterConfig={"Delay": 1})
        rng = random.Random(1)
        base = dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)
        payloads = [
            event_payload(rng, base + dt.timedelta(milliseconds=30 * i)) for i in range(args.events)
        ]
        t0 = time.perf_counter()
        put(client, "bench", payloads)
        print(f"loaded {args.events} events in {time.perf_counter() - t0:.1f}s", flush=True)
        drain_boto3 = drain_rate(kinesalite.url, "bench", args.events, lean=False)
        drain_lean = drain_rate(kinesalite.url, "bench", args.events, lean=True)
        drain = max(drain_boto3, drain_lean)  # the stricter baseline
        print(
            f"drain (raw GetRecords, 4 shards): boto3 {drain_boto3:,.0f} records/s, "
            f"json+base64 {drain_lean:,.0f} records/s; baseline {drain:,.0f}",
            flush=True,
        )
        spark = build_session(settings_for("bench", kinesalite.url, work, "x", 1.0))
        spark.sparkContext.setLogLevel("ERROR")
        overall, job = job_throughput(spark, "bench", kinesalite.url, work, args.events)
        print(
            f"job (local[2]): sustained {job:,.0f} records/s (ratio {job / drain:.2f}); "
            f"overall incl. start-up {overall:,.0f} records/s",
            flush=True,
        )
        latencies = (
            freshness(spark, client, kinesalite.url, work, args.rate, args.seconds)
            if args.seconds > 0
            else []
        )
        p50 = percentile(latencies, 0.5) if latencies else None
        p95 = percentile(latencies, 0.95) if latencies else None
        if latencies:
            print(f"freshness over {len(latencies)} events: p50 {p50:.1f}s  p95 {p95:.1f}s "
                  f"(mean {statistics.fmean(latencies):.1f}s)", flush=True)  # fmt: skip
        spark.stop()
    finally:
        kinesalite.stop()
    print(json.dumps({
        "events": args.events, "drain_rps": round(drain), "job_rps": round(job),
        "drain_rps_boto3": round(drain_boto3), "drain_rps_lean": round(drain_lean),
        "job_rps_incl_startup": round(overall),
        "ratio": round(job / drain, 3),
        "fresh_p50_s": round(p50, 2) if p50 is not None else None,
        "fresh_p95_s": round(p95, 2) if p95 is not None else None,
        "fresh_events": len(latencies), "trigger_s": 20, "producer_rps": args.rate,
    }))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
