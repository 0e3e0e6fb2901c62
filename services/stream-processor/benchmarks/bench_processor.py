"""Stream-processor benchmark: drain rate vs job throughput, and end-to-end freshness.

In one run, against a kinesalite it starts itself (4 shards):
  1. drain_rps  - the endpoint's raw GetRecords drain rate over N events (the baseline): the
                  faster of a boto3 loop and a json+base64 loop, one thread per shard;
  2. job_rps    - the job's sustained throughput on local[2] over the same N events;
  3. freshness  - a producer puts a steady R events/s for D seconds while the job runs with a
                  20 s trigger; for every event, (time the KPI row covering it is in the lake)
                  - (time it was put), from the KPI file's mtime and the event's arrival time;
  4. late_dropped - rows the job's dedup dropped as late in runs 2 and 3 (must be 0);
  5. state store - the job's dedup step over 1M distinct keys (Spark's rate source, 10
                  batches) with Spark's default HDFS-backed store and with RocksDB: state memory
                  and batch time at the end.
Prints figures, then one JSON object as the last line:
  {"drain_rps", "job_rps", "ratio", "fresh_p50_s", "fresh_p95_s", "late_dropped",
   "rocksdb_state_mb", "rocksdb_batch_ms", "hdfs_state_mb", "hdfs_batch_ms", ...}
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
from signal_processor.job import STATE_STORES, build_session, deduplicate, start_query
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


def late_dropped(lake: Path) -> int:
    """Rows the job's dedup dropped as late (must be 0)."""
    return int(
        lake_sql(
            lake,
            "SELECT coalesce(sum(late_dropped), 0) "
            "FROM read_parquet('{lake}/pipeline_batches/**/*.parquet')",
        )[0][0]
    )


def freshness(
    spark: Any, client: Any, url: str, work: Path, rate: int, seconds: int, trigger: float
) -> list[float]:
    stream = "bench-fresh"
    client.create_stream(StreamName=stream, ShardCount=4)
    client.get_waiter("stream_exists").wait(StreamName=stream, WaiterConfig={"Delay": 1})
    settings = settings_for(stream, url, work, "fresh", trigger=trigger)
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
    landed: dict[tuple[str, int], float] = {}
    for manifest in (lake / "_batches").glob("*/signal_strength_by_operator/*.json"):
        files = json.loads(manifest.read_text())["files"]
        if files:
            run = manifest.parent.parent.name
            landed[(run, int(manifest.stem))] = max(
                os.stat(f.removeprefix("file://")).st_mtime for f in files
            )
    latencies: list[float] = []
    for (run, batch_id), mtime in landed.items():
        rows = lake_sql(
            lake,
            "SELECT epoch(arrival_time) "
            f"FROM read_parquet('{{lake}}/events/**/part-{run}-{batch_id:012d}-*.parquet')",
        )
        latencies.extend(mtime - float(r[0]) for r in rows)
    return latencies


def state_store_cost(
    spark: Any, work: Path, provider: str, keys: int, per_batch: int
) -> dict[str, Any]:
    """The job's dedup step (`job.deduplicate`) over `keys` distinct event ids with one state
    store provider: Spark's rate source feeds `per_batch` new keys a batch, the read time
    advancing 1 s a batch (no key expires within the 10-minute horizon). Returns the state's
    rows and memory and the mean time of the last three batches."""
    from pyspark.sql import functions as F

    spark.conf.set("spark.sql.streaming.stateStore.providerClass", STATE_STORES[provider])
    rows = (
        spark.readStream.format("rate-micro-batch")
        .option("rowsPerBatch", per_batch)
        .option("numPartitions", 2)
        .load()
        .select(
            F.lit(True).alias("is_valid"),
            F.format_string("evt-%016d", "value").alias("dedup_key"),
            F.col("timestamp").alias("read_time"),
        )
    )
    query = (
        deduplicate(rows, "10 minutes")
        .writeStream.format("noop")
        .option("checkpointLocation", str(work / f"state-{provider}"))
        .trigger(processingTime="0 seconds")
        .start()
    )
    progress: list[dict[str, Any]] = []
    try:
        while True:
            if query.exception():
                raise RuntimeError(query.exception())
            progress = [p for p in query.recentProgress if p["numInputRows"] > 0]
            state = progress[-1]["stateOperators"][0] if progress else {}
            if state.get("numRowsTotal", 0) >= keys:
                break
            time.sleep(0.2)
    finally:
        query.stop()
    last = progress[-3:]
    state = progress[-1]["stateOperators"][0]
    return {
        "keys": int(state["numRowsTotal"]),
        "state_memory_mb": round(int(state.get("memoryUsedBytes", 0)) / 2**20, 1),
        "batch_ms": round(statistics.fmean(p["durationMs"]["triggerExecution"] for p in last)),
    }


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
    parser.add_argument("--trigger", type=float, default=20.0, help="freshness run trigger (s)")
    parser.add_argument(
        "--state-keys", type=int, default=1_000_000, help="distinct keys for the state-store run"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="seconds, not minutes: 3,000 events, 15 s of freshness at 200/s with a 2 s "
        "trigger, 20,000 state keys (CI: proves the script runs; the figures mean nothing)",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.events, args.rate, args.seconds = 3_000, 200, 15
        args.trigger, args.state_keys = 2.0, 20_000
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
            freshness(spark, client, kinesalite.url, work, args.rate, args.seconds, args.trigger)
            if args.seconds > 0
            else []
        )
        late = late_dropped(work / "throughput" / "lake")
        if args.seconds > 0:
            late += late_dropped(work / "fresh" / "lake")
        print(f"rows dropped as late by dedup: {late}", flush=True)
        per_batch = max(1, args.state_keys // 10)
        stores = {
            name: state_store_cost(spark, work, name, args.state_keys, per_batch)
            for name in ("hdfs", "rocksdb")
        }
        for name, cost in stores.items():
            print(
                f"dedup state, {name}: {cost['keys']:,} keys, state memory "
                f"{cost['state_memory_mb']} MB, batch of {per_batch:,} new keys "
                f"{cost['batch_ms']} ms",
                flush=True,
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
        "fresh_events": len(latencies), "trigger_s": args.trigger, "producer_rps": args.rate,
        "late_dropped": late,
        "state_keys": stores["rocksdb"]["keys"],
        "rocksdb_state_mb": stores["rocksdb"]["state_memory_mb"],
        "rocksdb_batch_ms": stores["rocksdb"]["batch_ms"],
        "hdfs_state_mb": stores["hdfs"]["state_memory_mb"],
        "hdfs_batch_ms": stores["hdfs"]["batch_ms"],
    }))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
