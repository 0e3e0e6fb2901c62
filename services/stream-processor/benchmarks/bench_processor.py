"""Stream-processor benchmark: drain rate vs job throughput, scaling, driver memory, freshness.

In one run, against a kinesalite it starts itself (4 shards) and one backlog of N events whose
event times follow --backlog-rate (33,000 events per second of event time, a large operator's
average, so a batch of a given size spans the windows it would span in production):
  1. drain_rps  - the endpoint's raw GetRecords drain rate over the N events (the baseline): the
                  faster of a boto3 loop and a json+base64 loop, one thread per shard;
  2. job_rps_local1 / job_rps - the job's sustained throughput on local[1] and on local[2] over
                  the same backlog (mid batch size): from the end of its first batch to the end
                  of the last batch that began with a full batch waiting (job_rps_with_tail:
                  to the end of the backlog's remainder); scaling_1_to_2 = their quotient,
                  ratio = job_rps / drain_rps;
  3. driver memory - the job on local[2] over the same backlog at three batch sizes
                  (maxRecordsPerBatch 25k, 100k, 400k): the peak RSS of the Python driver process
                  and of the JVM, and the bytes the driver received per batch;
  4. freshness  - a producer puts a steady R events/s for D seconds while the job runs, with a
                  20 s trigger and with a 5 s trigger: for every event, (time the KPI row
                  covering it is in the lake) - (time it was put), from the KPI file's mtime and
                  the event's arrival time;
  5. late_dropped - rows the job's dedup dropped as late in every run above (must be 0);
  6. CPU         - over the drain and each job run's steady batches, the machine's busy cores
                  (/proc/stat) and kinesalite's (/proc/<pid>/stat), and what a record cost each
                  side; from local[2]'s cost, the rate with every core busy (full_machine_rps)
                  and the scaling_1_to_2 and ratio it would give (scaling_ceiling,
                  ratio_ceiling): kinesalite shares these cores, so they bound what any
                  schedule of the same work reaches here;
  7. state store - the job's dedup step over 1M distinct keys (Spark's rate source, 10
                  batches) with Spark's default HDFS-backed store, with RocksDB as the job runs
                  it (the state's rows not counted) and with RocksDB counting them (Spark's
                  default): state memory and batch time at the end.

Every job run (2-4) is the service's own command, `python -m signal_processor.cli run`, in a
process of its own, so its memory is measured alone:
  - the driver: that Python process (the job's driver code: the foreachBatch sink, the lake
    writer's commits). Its peak RSS is VmHWM from /proc. The Python workers Spark forks (they
    read, validate and, in the executor design, aggregate and write) are children of the JVM, not
    of this process, and are not counted;
  - the JVM: in local mode it hosts the driver *and* the executor threads, so its peak RSS is
    reported (jvm_rss_mb_by_batch) but is no measure of the driver alone;
  - the bytes the driver received per batch: the sum of the "Result Size" task metric over the
    batch's tasks (what every task sent back to the driver: collected rows or aggregates), read
    from Spark's event log (spark.eventLog.enabled, given through PYSPARK_SUBMIT_ARGS; jobs are
    tied to their micro-batch by the streaming.sql.batchId job property).
Spark binds 127.0.0.1 only (SPARK_LOCAL_IP, in this process and in every job process).
Prints figures, then one JSON object as the last line:
  {"drain_rps", "job_rps", "job_rps_local1", "scaling_1_to_2", "ratio",
   "driver_rss_mb_by_batch", "driver_bytes_per_batch", "jvm_rss_mb_by_batch",
   "fresh_p50_s", "fresh_p95_s", "fresh_p95_s_trigger5", "late_dropped",
   "rocksdb_state_mb", "rocksdb_batch_ms", "rocksdb_counted_batch_ms", "hdfs_state_mb",
   "hdfs_batch_ms", "full_machine_rps", "scaling_ceiling", "ratio_ceiling", "cores_busy_local1",
   "spark_cpu_us_per_record_local2", ...}
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import boto3
import duckdb

from signal_local.endpoints import FAKE_CREDENTIALS, start_kinesalite
from signal_processor.adapters.kinesis_client import ShardReader, SourceOptions, decode_record
from signal_processor.settings import ProcessorSettings
from signal_processor.wiring import (
    ROCKSDB_ROW_COUNT,
    STATE_STORES,
    build_session,
    deduplicate,
)

OPERATORS = ("Movistar", "Vodafone", "Orange", "Yoigo")
NETWORKS = ("2G", "3G", "4G", "5G")
LOOPBACK = {"SPARK_LOCAL_IP": "127.0.0.1"}


def event_payload(rng: random.Random, when: dt.datetime) -> bytes:
    """One realistic, valid event (JSON) at `when`.

    Its serving cell is one of its postal area's three sectors of its operator (the producer's
    generator's model; 5G NR identities are 36 bits), so the cells are a bounded population as on
    a network, not a fresh identity per event.
    """
    area, operator, network = rng.randrange(100), rng.randrange(4), rng.choice(NETWORKS)
    cell = (area * len(OPERATORS) + operator) * 3 + rng.randrange(3) + 1
    event = {
        "event_id": uuid.UUID(int=rng.getrandbits(128)).hex,
        "device_id": f"dev-{rng.randrange(5000)}",
        "event_time": when.isoformat(),
        "operator": OPERATORS[operator],
        "network_type": network,
        "signal_dbm": rng.randint(-125, -55),
        "provider": rng.choice(("gps", "network", "fused")),
        "gps_precision_m": round(rng.uniform(2, 900), 2),
        "latitude": round(40.3 + rng.random() / 5, 6),
        "longitude": round(-3.8 + rng.random() / 5, 6),
        "postal_code": f"28{area:03d}",
        "status": rng.choice(("IN_SERVICE",) * 8 + ("OUT_OF_SERVICE", "EMERGENCY_ONLY")),
        "activity": rng.choice(("STILL", "WALKING", "IN_VEHICLE")),
        "speed_kmh": round(rng.uniform(0, 120), 1),
        "satellites": rng.randint(0, 20),
        "cell_id": cell * 256 if network == "5G" else cell,
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


def late_dropped(lake: Path) -> int:
    """Rows the job's dedup dropped as late (must be 0)."""
    return int(
        lake_sql(
            lake,
            "SELECT coalesce(sum(late_dropped), 0) "
            "FROM read_parquet('{lake}/pipeline_batches/**/*.parquet')",
        )[0][0]
    )


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


def status_kb(pid: int, key: str) -> int | None:
    """A figure of /proc/<pid>/status in kB (e.g. VmHWM, the peak RSS), None once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def java_child(pid: int) -> int | None:
    """The JVM the PySpark driver `pid` launched (its child; spark-submit execs java)."""
    for children in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            for child in children.read_text().split():
                if Path(f"/proc/{child}/comm").read_text().strip() == "java":
                    return int(child)
        except OSError:
            continue
    return None


class PeakRss(threading.Thread):
    """Samples the peak RSS (VmHWM) of a driver process and of its JVM until stopped."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.jvm: int | None = None
        self.driver_kb = self.jvm_kb = 0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.2):
            self.jvm = self.jvm or java_child(self.pid)
            self.driver_kb = max(self.driver_kb, status_kb(self.pid, "VmHWM") or 0)
            if self.jvm:
                self.jvm_kb = max(self.jvm_kb, status_kb(self.jvm, "VmHWM") or 0)


_TICK = os.sysconf("SC_CLK_TCK")


def machine_busy_s() -> float:
    """CPU seconds the machine's cores have spent busy since boot (/proc/stat: all but idle and
    iowait)."""
    with open("/proc/stat") as stat:
        fields = [int(v) for v in stat.readline().split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return (user + nice + system + irq + softirq + steal) / _TICK


def process_cpu_s(pid: int) -> float | None:
    """CPU seconds (user + system, all threads) process `pid` has used, None once it is gone."""
    try:
        rest = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(rest[11]) + int(rest[12])) / _TICK


@dataclass(frozen=True)
class CpuShare:
    """Where the machine's CPU went over a window in which `records` records were processed."""

    seconds: float
    records: int
    machine_s: float  # busy core-seconds, every process
    endpoint_s: float  # kinesalite's share of them

    @property
    def cores_busy(self) -> float:
        return self.machine_s / self.seconds

    @property
    def endpoint_cores(self) -> float:
        return self.endpoint_s / self.seconds

    @property
    def us_per_record(self) -> float:
        """The machine's CPU per record (the endpoint's included)."""
        return self.machine_s / self.records * 1e6

    @property
    def endpoint_us_per_record(self) -> float:
        return self.endpoint_s / self.records * 1e6

    @property
    def other_us_per_record(self) -> float:
        """Everything but the endpoint (Spark's JVM and Python workers, or the drain loop)."""
        return (self.machine_s - self.endpoint_s) / self.records * 1e6


class CpuMeter(threading.Thread):
    """Samples the machine's busy CPU time and the endpoint process's every 0.25 s, so that any
    window of wall-clock time (a job's steady batches, the drain) can be charged afterwards.

    On this machine the endpoint (kinesalite) shares the cores with the job; these figures say
    how much of the machine a run kept busy and what a record cost each side, which bounds what
    a second Spark core can add (see `ceilings`)."""

    def __init__(self, endpoint_pid: int) -> None:
        super().__init__(daemon=True)
        self.endpoint_pid = endpoint_pid
        self.samples: list[tuple[float, float, float]] = []  # (epoch s, machine s, endpoint s)
        self.done = threading.Event()
        self._sample()

    def _sample(self) -> None:
        endpoint = process_cpu_s(self.endpoint_pid)
        if endpoint is not None:
            self.samples.append((time.time(), machine_busy_s(), endpoint))

    def run(self) -> None:
        while not self.done.wait(0.25):
            self._sample()

    def _at(self, when: float) -> tuple[float, float]:
        """(machine, endpoint) CPU seconds at epoch time `when`, interpolated between samples."""
        samples = self.samples
        for (t0, m0, e0), (t1, m1, e1) in itertools.pairwise(samples):
            if t0 <= when <= t1:
                f = (when - t0) / (t1 - t0) if t1 > t0 else 0.0
                return m0 + f * (m1 - m0), e0 + f * (e1 - e0)
        raise ValueError(f"no CPU samples around {when}")

    def share(self, start: float, end: float, records: int) -> CpuShare | None:
        """The CPU spent between two epoch times, None if the window is empty or not sampled."""
        self._sample()
        if end <= start or records <= 0:
            return None
        try:
            (m0, e0), (m1, e1) = self._at(start), self._at(end)
        except ValueError:
            return None
        return CpuShare(end - start, records, m1 - m0, e1 - e0)


def result_bytes_by_batch(event_log: Path) -> dict[int, int]:
    """Bytes the driver received per micro-batch: the tasks' "Result Size" in Spark's event log."""
    stage_batch: dict[int, int] = {}
    received: dict[int, int] = defaultdict(int)
    for path in sorted(event_log.glob("*")):  # one file per application (rolling off)
        with path.open() as lines:
            for line in lines:
                event = json.loads(line)
                kind = event["Event"]
                if kind == "SparkListenerJobStart":
                    batch = (event.get("Properties") or {}).get("streaming.sql.batchId")
                    if batch is not None:
                        stage_batch.update((s, int(batch)) for s in event["Stage IDs"])
                elif kind == "SparkListenerTaskEnd" and event["Stage ID"] in stage_batch:
                    metrics = event.get("Task Metrics") or {}
                    received[stage_batch[event["Stage ID"]]] += int(metrics.get("Result Size", 0))
    return dict(received)


@dataclass
class JobRun:
    """What one job process did: its batches (id, end time, rows), memory and driver bytes."""

    name: str
    lake: Path
    master: str
    batch_size: int
    elapsed_s: float
    batches: list[tuple[int, float, int]]
    driver_peak_mb: float
    jvm_peak_mb: float
    received: dict[int, int] = field(default_factory=dict)
    cpu: CpuShare | None = None  # over the steady batches (`steady`)

    @property
    def steady(self) -> list[tuple[int, float, int]]:
        """The first batch and those after it that began with at least `batch_size` records
        waiting. The batches after them read the backlog's remainder (e.g. 2,192 records of a
        400k backlog), whose fixed per-batch cost a running stream never pays with a backlog
        behind it."""
        waiting, steady = sum(rows for _, _, rows in self.batches), 0
        for i, (_, _, rows) in enumerate(self.batches):
            if waiting < self.batch_size:
                break
            steady, waiting = i, waiting - rows
        return self.batches[: steady + 1]

    @property
    def sustained_rps(self) -> float:
        """Records/s while the backlog held a full batch (`steady`): from the end of the first
        batch (JVM warm-up, first planning) to the end of the last steady one;
        `rps_with_tail` counts the remainder's batches too."""
        return self._rate(self.steady)

    @property
    def rps_with_tail(self) -> float:
        """Records/s from the end of the first batch to the end of the last one."""
        return self._rate(self.batches)

    def _rate(self, batches: list[tuple[int, float, int]]) -> float:
        later = sum(rows for _, _, rows in batches[1:])
        span = batches[-1][1] - batches[0][1] if len(batches) > 1 else 0.0
        total = sum(rows for _, _, rows in self.batches)
        return later / span if span > 0 else total / self.elapsed_s

    @property
    def max_received(self) -> int:
        """The most bytes the driver received for one batch that read records."""
        return max((self.received.get(b, 0) for b, _, _ in self.batches), default=0)


class Job:
    """The service's command (`signal_processor.cli run`) in a process of its own."""

    def __init__(
        self,
        work: Path,
        name: str,
        *,
        url: str,
        stream: str,
        master: str,
        batch: int,
        trigger: float,
    ) -> None:
        self.name, self.master, self.batch = name, master, batch
        self.base = work / name
        self.lake = self.base / "lake"
        self.event_log = self.base / "eventlog"
        self.event_log.mkdir(parents=True)
        env = {
            **os.environ,
            **LOOPBACK,
            # under pex or Pants the sources are not on the interpreter's default path
            "PYTHONPATH": os.pathsep.join(p for p in sys.path if p),
            "SIGNAL_PROCESSOR_SPARK_MASTER": master,
            "SIGNAL_PROCESSOR_SHUFFLE_PARTITIONS": "2",
            "SIGNAL_PROCESSOR_LOG_JSON": "false",
            "SIGNAL_PROCESSOR_LOG_LEVEL": "WARNING",
            "PYSPARK_SUBMIT_ARGS": " ".join(
                f"--conf {key}={value}"
                for key, value in {
                    "spark.eventLog.enabled": "true",
                    "spark.eventLog.dir": self.event_log.as_uri(),
                    "spark.eventLog.compress": "false",
                    "spark.eventLog.rolling.enabled": "false",
                    "spark.ui.showConsoleProgress": "false",
                }.items()
            )
            + " pyspark-shell",
        }
        argv = [
            sys.executable, "-m", "signal_processor.cli", "run",
            "--stream", stream, "--endpoint-url", url,
            "--lake-root", self.lake.as_uri(), "--checkpoint", (self.base / "checkpoint").as_uri(),
            "--trigger-seconds", str(trigger), "--max-records-per-batch", str(batch),
            "--starting-position", "trim_horizon",
        ]  # fmt: skip
        self.log: IO[bytes] = (self.base / "job.log").open("wb")
        self.started = time.perf_counter()
        self.process = subprocess.Popen(
            argv, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.rss = PeakRss(self.process.pid)
        self.rss.start()

    def __enter__(self) -> Job:
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()  # a no-op once stopped; on an error or Ctrl-C no job process outlives us

    def wait_rows(self, n: int, *, timeout: float) -> None:
        """Wait until the lake's committed batches hold `n` records read."""
        deadline = time.monotonic() + timeout
        while rows_in(self.lake) < n:
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.kill()
                tail = (self.base / "job.log").read_text(errors="replace")[-3000:]
                raise RuntimeError(f"job {self.name} did not reach {n} records:\n{tail}")
            time.sleep(0.5)

    def kill(self) -> None:
        """SIGKILL the job's process group (its JVM and Python workers too) if still running."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.rss.done.set()
        self.log.close()

    def stop(self) -> JobRun:
        """Stop the command as an operator does (SIGTERM: the query stops, then Spark)."""
        elapsed = time.perf_counter() - self.started
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(120)
        except subprocess.TimeoutExpired:
            self.kill()
        self.rss.done.set()
        self.rss.join()
        self.log.close()
        batches = [
            (int(b), float(t), int(r))
            for b, t, r in lake_sql(
                self.lake,
                "SELECT batch_id, epoch(batch_time), rows_in "
                "FROM read_parquet('{lake}/pipeline_batches/**/*.parquet') "
                "WHERE rows_in > 0 ORDER BY batch_id",
            )
        ]
        return JobRun(
            name=self.name,
            lake=self.lake,
            master=self.master,
            batch_size=self.batch,
            elapsed_s=elapsed,
            batches=batches,
            driver_peak_mb=self.rss.driver_kb / 1024,
            jvm_peak_mb=self.rss.jvm_kb / 1024,
            received=result_bytes_by_batch(self.event_log),
        )


def drain_job(
    work: Path, name: str, url: str, n: int, *, master: str, batch: int, meter: CpuMeter
) -> JobRun:
    """The job draining the `n`-record backlog from the trim horizon (0.1 s trigger); its CPU
    is charged over its steady batches (`JobRun.steady`)."""
    with Job(work, name, url=url, stream="bench", master=master, batch=batch, trigger=0.1) as job:
        job.wait_rows(n, timeout=max(600.0, n / 500))
        run = job.stop()
    steady = run.steady
    run.cpu = meter.share(steady[0][1], steady[-1][1], sum(rows for _, _, rows in steady[1:]))
    sizes = [rows for _, _, rows in run.batches]
    print(
        f"  {name} ({master}, batches of <= {batch:,}): {len(sizes)} batches "
        f"(median {statistics.median(sizes):,.0f} records), sustained {run.sustained_rps:,.0f} "
        f"records/s ({run.rps_with_tail:,.0f} with the backlog's tail); driver peak RSS "
        f"{run.driver_peak_mb:.0f} MB, JVM {run.jvm_peak_mb:.0f} MB; "
        f"driver received <= {run.max_received:,} bytes a batch",
        flush=True,
    )
    if run.cpu is not None:
        print(f"    CPU over the steady batches: {describe(run.cpu)}", flush=True)
    return run


def describe(cpu: CpuShare) -> str:
    return (
        f"{cpu.cores_busy:.2f} of {os.cpu_count()} cores busy (kinesalite "
        f"{cpu.endpoint_cores:.2f}); a record cost {cpu.us_per_record:.1f} us of CPU, "
        f"kinesalite's {cpu.endpoint_us_per_record:.1f} us and the rest "
        f"{cpu.other_us_per_record:.1f} us"
    )


def freshness(
    client: Any, url: str, work: Path, *, rate: int, seconds: int, trigger: float
) -> tuple[list[float], int]:
    """(latency of every event put in the measured window, late rows) at `rate` events/s."""
    name = f"fresh-{trigger:g}s"
    stream = f"bench-{name.replace('.', '-')}"
    client.create_stream(StreamName=stream, ShardCount=4)
    client.get_waiter("stream_exists").wait(StreamName=stream, WaiterConfig={"Delay": 1})
    job = Job(work, name, url=url, stream=stream, master="local[2]", batch=200_000, trigger=trigger)
    with job:
        rng = random.Random(3)
        # a second of warm-up events: measuring starts once the job has started and committed them
        warm = rate
        put(client, stream, [event_payload(rng, dt.datetime.now(dt.UTC)) for _ in range(warm)])
        job.wait_rows(warm, timeout=600)
        measured_from = time.time()
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
        print(
            f"  freshness producer: {sent} events at {rate}/s for {seconds}s, trigger {trigger:g}s",
            flush=True,
        )
        job.wait_rows(warm + sent, timeout=300 + 4 * trigger)
        job.stop()
    lake = job.lake
    # when each batch's KPI rows landed: the newest mtime of its signal_strength_by_operator files
    landed: dict[int, float] = {}
    for path, seq in lake_sql(
        lake,
        "SELECT DISTINCT filename, commit_seq FROM read_parquet("
        "'{lake}/signal_strength_by_operator/**/*.parquet', filename = true)",
    ):
        landed[int(seq)] = max(landed.get(int(seq), 0.0), os.stat(path).st_mtime)
    latencies = [
        landed[int(seq)] - float(arrival)
        for seq, arrival in lake_sql(
            lake,
            "SELECT commit_seq, epoch(arrival_time) "
            "FROM read_parquet('{lake}/events/**/*.parquet') "
            f"WHERE epoch(arrival_time) >= {measured_from}",
        )
    ]
    return latencies, late_dropped(lake)


# the dedup's state store as the job runs it, and the variants it is compared with
STATE_VARIANTS: dict[str, tuple[str, dict[str, str]]] = {
    "hdfs": ("hdfs", {}),
    "rocksdb": ("rocksdb", {}),  # rows not counted (wiring.configure_session)
    "rocksdb_counted": ("rocksdb", {ROCKSDB_ROW_COUNT: "true"}),  # Spark's default
}


def state_store_cost(
    spark: Any, work: Path, variant: str, keys: int, per_batch: int
) -> dict[str, Any]:
    """The job's dedup step (`wiring.deduplicate`) over `keys` distinct event ids with one state
    store variant (STATE_VARIANTS): Spark's rate source feeds `per_batch` new keys a batch, the
    read time advancing 1 s a batch (no key expires within the 10-minute horizon). Returns the
    keys written to the state, its memory and the mean time of the last three batches."""
    from pyspark.sql import functions as F

    provider, conf = STATE_VARIANTS[variant]
    spark.conf.set("spark.sql.streaming.stateStore.providerClass", STATE_STORES[provider])
    saved = {key: spark.conf.get(key, None) for key in conf}
    for key, value in conf.items():
        spark.conf.set(key, value)  # a query takes the session's settings as it starts
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
        .option("checkpointLocation", str(work / f"state-{variant}"))
        .trigger(processingTime="0 seconds")
        .start()
    )
    for key, value in saved.items():
        if value is None:
            spark.conf.unset(key)
        else:
            spark.conf.set(key, value)
    progress: list[dict[str, Any]] = []
    written = 0
    try:
        while written < keys:
            if query.exception():
                raise RuntimeError(query.exception())
            # numRowsTotal is 0 when RocksDB does not count; every key is new and none expires,
            # so the rows the batches wrote are the state's keys
            progress = [p for p in query.recentProgress if p["numInputRows"] > 0]
            written = sum(int(p["stateOperators"][0]["numRowsUpdated"]) for p in progress)
            time.sleep(0.2)
    finally:
        query.stop()
    last = progress[-3:]
    return {
        "keys": written,
        "state_memory_mb": round(
            int(progress[-1]["stateOperators"][0].get("memoryUsedBytes", 0)) / 2**20, 1
        ),
        "batch_ms": round(statistics.fmean(p["durationMs"]["triggerExecution"] for p in last)),
    }


def ceilings(one: JobRun, two: JobRun, drain: float) -> dict[str, Any]:
    """What this machine allows the job at its measured cost: `full_machine_rps`, local[2]'s
    CPU per record (kinesalite's serving included) with every core busy, and the
    `scaling_1_to_2` and `ratio` that rate would give. No schedule of the same work does better
    here; only a cheaper record, or an endpoint off these cores, would."""
    if two.cpu is None or one.cpu is None:
        return {"full_machine_rps": None, "scaling_ceiling": None, "ratio_ceiling": None}
    full = (os.cpu_count() or 1) / (two.cpu.us_per_record / 1e6)
    return {
        "full_machine_rps": round(full),
        "scaling_ceiling": round(full / one.sustained_rps, 3),
        "ratio_ceiling": round(full / drain, 3),
    }


def cpu_figure(cpu: CpuShare | None, name: str) -> float | None:
    return None if cpu is None else round(float(getattr(cpu, name)), 2)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def rounded(value: float | None, digits: int = 2) -> float | None:
    return round(value, digits) if value is not None else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=800_000, help="backlog for drain and jobs")
    parser.add_argument(
        "--backlog-rate",
        type=float,
        default=33_000.0,
        help="events per second of event time in the backlog (default: the large operator's "
        "average, so a batch spans the event time a batch of its size spans in production)",
    )
    parser.add_argument(
        "--batch-sizes",
        default="25000,100000,400000",
        help="maxRecordsPerBatch of the driver-memory runs (the middle one: throughput runs)",
    )
    parser.add_argument("--rate", type=int, default=2_000, help="freshness producer events/s")
    parser.add_argument(
        "--seconds", type=int, default=180, help="each freshness run's length (0: skip freshness)"
    )
    parser.add_argument("--trigger", type=float, default=20.0, help="freshness run trigger (s)")
    parser.add_argument(
        "--short-trigger", type=float, default=5.0, help="second freshness run's trigger (s)"
    )
    parser.add_argument(
        "--state-keys", type=int, default=1_000_000, help="distinct keys for the state-store run"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a few minutes: 3,000 events in batches of 250/1,000/3,000, 8 s of freshness at "
        "200/s with 4 s and 1 s triggers, 20,000 state keys (CI: proves the script runs and "
        "emits every key; the figures mean nothing)",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.events, args.batch_sizes, args.rate, args.seconds = 3_000, "250,1000,3000", 200, 8
        args.trigger, args.short_trigger, args.state_keys = 4.0, 1.0, 20_000
    sizes = sorted(int(s) for s in args.batch_sizes.split(","))
    mid = sizes[len(sizes) // 2]
    os.environ.update(FAKE_CREDENTIALS)
    os.environ.update(LOOPBACK)
    # SIGTERM (e.g. a CI timeout) unwinds like Ctrl-C: job processes and kinesalite are stopped
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    load_start = os.getloadavg()[0]
    print(f"load average (1 min) at start: {load_start:.2f} on {os.cpu_count()} cores", flush=True)
    work = Path(tempfile.mkdtemp(prefix="bench-processor-"))
    kinesalite = start_kinesalite(work / "logs")
    meter = CpuMeter(kinesalite.pid)
    try:
        client = boto3.client("kinesis", endpoint_url=kinesalite.url, region_name="us-east-1")
        client.create_stream(StreamName="bench", ShardCount=4)
        client.get_waiter("stream_exists").wait(StreamName="bench", WaiterConfig={"Delay": 1})
        rng = random.Random(1)
        base = dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)
        t0 = time.perf_counter()
        record_bytes = 0
        for start in range(0, args.events, 50_000):  # in slices: the payloads never all in memory
            payloads = [
                event_payload(rng, base + dt.timedelta(seconds=i / args.backlog_rate))
                for i in range(start, min(args.events, start + 50_000))
            ]
            record_bytes += sum(map(len, payloads))
            put(client, "bench", payloads)
        print(
            f"loaded {args.events} events ({record_bytes / args.events:.0f} bytes each) in "
            f"{time.perf_counter() - t0:.1f}s",
            flush=True,
        )
        meter.start()
        drains: dict[bool, tuple[float, CpuShare | None]] = {}
        for lean in (False, True):
            began = time.time()
            rate = drain_rate(kinesalite.url, "bench", args.events, lean=lean)
            drains[lean] = rate, meter.share(began, time.time(), args.events)
        (drain_boto3, _), (drain_lean, _) = drains[False], drains[True]
        drain, drain_cpu = max(drains.values(), key=lambda d: d[0])  # the stricter baseline
        print(
            f"drain (raw GetRecords, 4 shards): boto3 {drain_boto3:,.0f} records/s, "
            f"json+base64 {drain_lean:,.0f} records/s; baseline {drain:,.0f}",
            flush=True,
        )
        if drain_cpu is not None:
            print(f"  CPU over the baseline drain: {describe(drain_cpu)}", flush=True)
        url, n = kinesalite.url, args.events
        one = drain_job(work, "local1", url, n, master="local[1]", batch=mid, meter=meter)
        two = drain_job(work, "local2", url, n, master="local[2]", batch=mid, meter=meter)
        by_size = {mid: two} | {
            size: drain_job(
                work, f"batch-{size}", url, n, master="local[2]", batch=size, meter=meter
            )
            for size in sizes
            if size != mid
        }
        by_size = dict(sorted(by_size.items()))
        job = two.sustained_rps
        scaling = job / one.sustained_rps
        ceiling = ceilings(one, two, drain)
        if ceiling["full_machine_rps"] is not None:
            print(
                f"at local[2]'s CPU per record with every core busy, this machine runs the job at "
                f"{ceiling['full_machine_rps']:,} records/s: scaling_1_to_2 <= "
                f"{ceiling['scaling_ceiling']:.2f}, ratio <= {ceiling['ratio_ceiling']:.2f}",
                flush=True,
            )
        rss = {str(size): round(run.driver_peak_mb, 1) for size, run in by_size.items()}
        spread = max(rss.values()) / min(rss.values()) - 1
        print(
            f"job: local[1] {one.sustained_rps:,.0f} records/s, local[2] {job:,.0f} records/s "
            f"(scaling {scaling:.2f}, ratio to the drain {job / drain:.2f}); overall incl. "
            f"start-up {n / two.elapsed_s:,.0f} records/s",
            flush=True,
        )
        print(
            f"driver peak RSS by batch size (MB): {rss} (spread {spread:.1%}); "
            "bytes received per batch: "
            f"{ {size: run.max_received for size, run in by_size.items()} }",
            flush=True,
        )
        late = sum(late_dropped(run.lake) for run in (one, *by_size.values()))
        fresh: dict[float, list[float]] = {}
        for trigger in (args.trigger, args.short_trigger) if args.seconds > 0 else ():
            fresh[trigger], fresh_late = freshness(
                client, url, work, rate=args.rate, seconds=args.seconds, trigger=trigger
            )
            late += fresh_late
            if fresh[trigger]:
                print(
                    f"freshness at {args.rate}/s, {trigger:g}s trigger, over "
                    f"{len(fresh[trigger])} events: p50 {percentile(fresh[trigger], 0.5):.1f}s  "
                    f"p95 {percentile(fresh[trigger], 0.95):.1f}s",
                    flush=True,
                )
        print(f"rows dropped as late by dedup: {late}", flush=True)
        spark = build_session(settings_for("bench", url, work, "x", 1.0))
        # Stopping a state query (state_store_cost) interrupts the batch in flight, which Spark
        # logs, even after the stop returns, as failed state commits: expected, so the session
        # logs nothing; a query that fails is raised there with its exception.
        spark.sparkContext.setLogLevel("OFF")
        per_batch = max(1, args.state_keys // 10)
        stores = {
            name: state_store_cost(spark, work, name, args.state_keys, per_batch)
            for name in STATE_VARIANTS
        }
        for name, cost in stores.items():
            print(
                f"dedup state, {name}: {cost['keys']:,} keys, state memory "
                f"{cost['state_memory_mb']} MB, batch of {per_batch:,} new keys "
                f"{cost['batch_ms']} ms",
                flush=True,
            )
        spark.stop()
    finally:
        meter.done.set()
        kinesalite.stop()
    load_end = os.getloadavg()[0]
    print(f"load average (1 min) at the end: {load_end:.2f}", flush=True)

    def quantile(trigger: float, q: float) -> float | None:
        values = fresh.get(trigger)
        return rounded(percentile(values, q)) if values else None

    print(json.dumps({
        "events": n, "backlog_rate": args.backlog_rate, "record_bytes": round(record_bytes / n),
        "drain_rps": round(drain),
        "job_rps": round(job), "job_rps_local1": round(one.sustained_rps),
        "scaling_1_to_2": round(scaling, 3), "ratio": round(job / drain, 3),
        "drain_rps_boto3": round(drain_boto3), "drain_rps_lean": round(drain_lean),
        "job_rps_incl_startup": round(n / two.elapsed_s), "batch_size": mid,
        "job_rps_with_tail": round(two.rps_with_tail),
        "job_rps_local1_with_tail": round(one.rps_with_tail),
        "driver_rss_mb_by_batch": rss, "driver_rss_spread": round(spread, 3),
        "driver_bytes_per_batch": {str(s): r.max_received for s, r in by_size.items()},
        "jvm_rss_mb_by_batch": {str(s): round(r.jvm_peak_mb, 1) for s, r in by_size.items()},
        "job_rps_by_batch": {str(s): round(r.sustained_rps) for s, r in by_size.items()},
        "fresh_p50_s": quantile(args.trigger, 0.5), "fresh_p95_s": quantile(args.trigger, 0.95),
        "fresh_events": len(fresh.get(args.trigger, [])), "trigger_s": args.trigger,
        "fresh_p50_s_trigger5": quantile(args.short_trigger, 0.5),
        "fresh_p95_s_trigger5": quantile(args.short_trigger, 0.95),
        "short_trigger_s": args.short_trigger, "producer_rps": args.rate,
        "late_dropped": late,
        "state_keys": stores["rocksdb"]["keys"],
        "rocksdb_state_mb": stores["rocksdb"]["state_memory_mb"],
        "rocksdb_batch_ms": stores["rocksdb"]["batch_ms"],
        "rocksdb_counted_batch_ms": stores["rocksdb_counted"]["batch_ms"],
        "hdfs_state_mb": stores["hdfs"]["state_memory_mb"],
        "hdfs_batch_ms": stores["hdfs"]["batch_ms"],
        "load_avg_1m": [round(load_start, 2), round(load_end, 2)],
        **ceiling,
        "cores_busy_local1": cpu_figure(one.cpu, "cores_busy"),
        "cores_busy_local2": cpu_figure(two.cpu, "cores_busy"),
        "endpoint_cores_local2": cpu_figure(two.cpu, "endpoint_cores"),
        "cpu_us_per_record_local2": cpu_figure(two.cpu, "us_per_record"),
        "endpoint_cpu_us_per_record_local2": cpu_figure(two.cpu, "endpoint_us_per_record"),
        "spark_cpu_us_per_record_local2": cpu_figure(two.cpu, "other_us_per_record"),
        "spark_cpu_us_per_record_local1": cpu_figure(one.cpu, "other_us_per_record"),
        "endpoint_cpu_us_per_record_drain": cpu_figure(drain_cpu, "endpoint_us_per_record"),
        "cores_busy_drain": cpu_figure(drain_cpu, "cores_busy"),
    }))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
