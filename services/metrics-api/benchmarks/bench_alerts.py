"""Alert latency benchmark (#25): from an outage's first event to its notifications, over the
local pipeline, and the evaluator's time per cycle at 1,000 areas.

1. Cycle time. A synthetic lake (2 h of events and KPI partials, 40 events per postal code and
   5-minute window, 2 % of the codes in an outage over the last 30 minutes; written with the
   alert tests' writer, `tests/alert_fixtures.write_events`) of 1,000 postal codes, and the same
   of 10 (the baseline, measured in the same run). The evaluator (in this process: DuckDB, the
   default rules, one cycle a minute after the data) runs several cycles on each.
2. Latency, every component a process of its own on 127.0.0.1: kinesalite; the stream processor
   (`python -m signal_processor.cli run`, local Spark) into a file lake; the evaluator
   (`python -m signal_api.main alerts evaluate --every E`) with short windows (the
   SIGNAL_API_ALERT_* overrides below, printed) notifying the HMAC webhook receiver
   (`python -m signal_api.alerts.receiver`, which verifies each request and logs its arrival
   time); the producer (`python -m signal_producer.cli generate`) sending live events (event
   time = now) with K outages (`--outage CODE@+Xs/+Ys`, two postal codes taking turns).
   Per outage, on the `out_of_service` rule the outage breaks:
   - fire latency: the firing notification's arrival at the receiver minus the stream's arrival
     time (`events.arrival_time` in the lake: Kinesis's ApproximateArrivalTimestamp) of the
     outage's first event;
   - resolve latency: the resolved notification's arrival minus the arrival time of the code's
     first event after the outage;
   - beyond persistence: the firing arrival minus the moment the rule's persistence window was
     met (outage start + fire_after_windows x window). The issue's target: within 180 s.
   The evaluator's own /metrics (SIGNAL_ALERTS_METRICS_PORT) gives its live cycle time.
Percentiles interpolate linearly (with 5 outages, p95 is near the largest). Never fails on
timing. The last line printed is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import duckdb
import httpx
import numpy as np
import pandas as pd
from alert_fixtures import window_events, write_events
from prometheus_client.parser import text_string_to_metric_families

from signal_api.alerts.model import Transition
from signal_api.alerts.rules import AlertRules, rules_from_settings
from signal_api.settings import ApiSettings
from signal_api.wiring import build_engine, build_evaluator
from signal_local.endpoints import FAKE_CREDENTIALS, ManagedProcess, free_port, start_kinesalite

SECRET = "bench-alerts-secret"
# the two heaviest postal codes of the producer's region (~5 % of its events each)
OUTAGE_CODES = ("47024", "47023")
RULE = "out_of_service"
TARGET_BEYOND_PERSISTENCE_S = 180.0
SYNTHETIC_T0 = dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.UTC)
SYNTHETIC_WINDOWS = 24  # 2 h of 5-minute windows


def percentile(values: Sequence[float], q: float) -> float | None:
    return round(float(np.percentile(values, q * 100)), 2) if values else None


def pythonpath_env(extra: dict[str, str]) -> dict[str, str]:
    """This interpreter's environment and path (under pex or Pants the sources are not on the
    default path), without SIGNAL_* settings of the caller's shell, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIGNAL_")}
    return {**env, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p), **extra}


def spawn(name: str, argv: list[str], env: dict[str, str], log_dir: Path) -> ManagedProcess:
    """`python argv...` in its own process group, logging to log_dir/name.log."""
    log_path = log_dir / f"{name}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, *argv],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    return ManagedProcess(name, "", process, log_path)


def wait_listening(proc: ManagedProcess, port: int, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.process.poll() is not None:
            raise RuntimeError(f"{proc.name} exited:\n{proc.log_path.read_text()[-3000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{proc.name} did not listen on {port}")


# --- 1. the evaluator's cycle time over a synthetic lake -------------------------------------


def synthetic_lake(root: Path, areas: int, *, seed: int = 25) -> int:
    """`areas` postal codes x 2 h of events and partials; 2 % of the codes (at least one) are in
    an outage over the last 30 minutes (70 % OUT_OF_SERVICE, weak signal). Returns the events."""
    rng = np.random.default_rng(seed)
    codes = np.array([f"{10000 + i}" for i in range(areas)])
    outage = max(1, areas // 50)
    frames = []
    for w in range(SYNTHETIC_WINDOWS):
        start = SYNTHETIC_T0 + dt.timedelta(minutes=5 * w)
        # one call per window: device i % (8 areas) belongs to code i % areas (8 per code)
        frame = window_events(rng, code="c", start=start, n=40 * areas, devices=8 * areas)
        index = np.arange(len(frame)) % areas
        frame["postal_code"] = codes[index]
        if w >= SYNTHETIC_WINDOWS - 6:
            hit = (index < outage) & (rng.random(len(frame)) < 0.7)
            frame.loc[hit, "status"] = "OUT_OF_SERVICE"
            frame.loc[hit, "signal_dbm"] = rng.integers(-125, -111, int(hit.sum()))
        frames.append(frame)
    events = pd.concat(frames, ignore_index=True)
    write_events(root, events)
    return len(events)


class NoDelivery:
    """The cycle without its delivery: this part times the evaluation."""

    def deliver(self, transitions: Sequence[Transition]) -> int:
        return len(transitions)


def cycle_seconds(work: Path, areas: int, cycles: int) -> dict[str, Any]:
    """Seconds per evaluator cycle (default rules) over a synthetic lake of `areas` codes."""
    root = work / f"lake-{areas}"
    started = time.perf_counter()
    events = synthetic_lake(root, areas)
    written = time.perf_counter() - started
    settings = ApiSettings(lake_root=f"file://{root}", auth_enabled=False, log_json=False)
    engine = build_engine(settings)
    times, transitions, judged = [], 0, 0
    try:
        evaluator = build_evaluator(settings, engine, notifier=NoDelivery())
        first = SYNTHETIC_T0 + dt.timedelta(minutes=5 * SYNTHETIC_WINDOWS, seconds=60)
        for i in range(cycles):
            result = evaluator.evaluate(first + dt.timedelta(minutes=i))
            times.append(result.seconds)
            transitions += len(result.transitions)
            judged = result.areas
    finally:
        engine.close()
    print(
        f"  {areas:,} postal codes ({events:,} events, written in {written:.1f} s): "
        f"{judged:,} rule x area pairs, {transitions} transitions; cycles "
        + ", ".join(f"{t:.2f}" for t in times)
        + " s",
        flush=True,
    )
    return {"median": statistics.median(times), "all": times, "pairs": judged}


# --- 2. outage-to-notification latency over the local pipeline -------------------------------


@dataclass(frozen=True)
class Outage:
    code: str
    start: dt.datetime  # event time, as the producer's --outage says
    end: dt.datetime


def schedule(t0: dt.datetime, *, count: int, lead: float, on: float, off: float) -> list[Outage]:
    outages = []
    for k in range(count):
        start = t0 + dt.timedelta(seconds=lead + k * (on + off))
        outages.append(
            Outage(OUTAGE_CODES[k % len(OUTAGE_CODES)], start, start + dt.timedelta(seconds=on))
        )
    return outages


def evaluator_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The ApiSettings fields the benchmark's evaluator gets (as SIGNAL_API_<NAME>)."""
    return {
        "alert_window_minutes": 1,
        "alert_recent_minutes": 1,
        "alert_horizon_minutes": 10,
        "alert_resolve_after_windows": 1,
        "alert_out_of_service_windows": 1,
        "complete_after_s": args.settle,
    }


def describe(rules: AlertRules, every: float) -> str:
    oos = rules.out_of_service
    return (
        f"window {rules.window_minutes} min, horizon {rules.horizon_minutes} min, settle "
        f"{rules.settle_s} s, every {every:g} s, resolve after {rules.resolve_after_windows} "
        f"clear window(s); {oos.kind}: share >= {oos.share:g} of >= {oos.min_events} events over "
        f"the last {oos.recent_minutes} min, fires after {oos.fire_after_windows} window(s)"
    )


def rows_in(lake: Path) -> int:
    try:
        con = duckdb.connect()
        found = con.execute(
            "SELECT coalesce(sum(rows_in), 0) FROM read_parquet(?)",
            [str(lake / "pipeline_batches" / "**" / "*.parquet")],
        ).fetchone()
        return int(found[0]) if found else 0
    except duckdb.Error:
        return 0


def put_times(lake: Path, outages: Sequence[Outage]) -> list[tuple[float | None, float | None]]:
    """Per outage, the stream arrival time of its first event and of the code's first event
    after it (unix seconds), from the lake's events table."""
    con = duckdb.connect()
    files = str(lake / "events" / "**" / "*.parquet")
    sql = (
        "SELECT min(epoch(arrival_time)) FROM read_parquet(?) "
        "WHERE postal_code = ? AND epoch(event_time) >= ? AND epoch(event_time) < ?"
    )
    found = []
    for o in outages:
        first = con.execute(sql, [files, o.code, o.start.timestamp(), o.end.timestamp()]).fetchone()
        after = con.execute(sql, [files, o.code, o.end.timestamp(), float("inf")]).fetchone()
        found.append((first[0] if first else None, after[0] if after else None))
    return found


def received(log: Path) -> list[dict[str, Any]]:
    """The receiver's verified requests: the transition's JSON and its arrival time."""
    if not log.exists():
        return []
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    return [
        {**line["body"], "received_at": line["received_at"]} for line in lines if line["verified"]
    ]


def notifications(
    log: Path, outages: Sequence[Outage], window: dt.timedelta
) -> list[tuple[dict[str, Any] | None, dict[str, Any] | None]]:
    """Per outage, its firing and resolved notifications of RULE (None when not received)."""
    got = received(log)
    found = []
    for o in outages:
        firing = next(
            (
                n
                for n in sorted(got, key=lambda n: n["received_at"])
                if n["rule"] == RULE
                and n["area"] == o.code
                and n["state"] == "firing"
                and o.start - 2 * window
                <= dt.datetime.fromisoformat(n["since"].replace("Z", "+00:00"))
                <= o.end
            ),
            None,
        )
        resolved = None
        if firing is not None:
            resolved = next(
                (
                    n
                    for n in got
                    if n["alert_id"] == firing["alert_id"]
                    and n["since"] == firing["since"]
                    and n["state"] == "resolved"
                ),
                None,
            )
        found.append((firing, resolved))
    return found


def scrape(url: str) -> dict[str, float]:
    """The unlabelled samples and the sums of labelled ones, by sample name."""
    try:
        text = httpx.get(url, timeout=5).text
    except httpx.HTTPError:
        return {}
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[s.name] = out.get(s.name, 0.0) + s.value
    return out


def latency_run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Run the pipeline with the outages; the per-outage latencies and the evaluator's figures."""
    logs = work / "logs"
    logs.mkdir(parents=True)
    lake = work / "lake"
    stream = "bench-alerts"
    for key, value in FAKE_CREDENTIALS.items():
        os.environ.setdefault(key, value)
    overrides = evaluator_overrides(args)
    rules = rules_from_settings(ApiSettings(auth_enabled=False, **overrides))
    print(f"rules: {describe(rules, args.every)}", flush=True)
    print(
        "  evaluator settings: "
        + " ".join(f"SIGNAL_API_{k.upper()}={v}" for k, v in overrides.items()),
        flush=True,
    )
    running: list[ManagedProcess] = []
    kinesis_proc = start_kinesalite(logs)
    running.append(kinesis_proc)
    try:
        kinesis = boto3.client("kinesis", endpoint_url=kinesis_proc.url, region_name="us-east-1")
        kinesis.create_stream(StreamName=stream, ShardCount=2)
        kinesis.get_waiter("stream_exists").wait(StreamName=stream, WaiterConfig={"Delay": 1})
        aws = {**FAKE_CREDENTIALS, "SIGNAL_PRODUCER_KINESIS_ENDPOINT_URL": kinesis_proc.url}
        processor_argv = [
            "-m", "signal_processor.cli", "run", "--stream", stream,
            "--endpoint-url", kinesis_proc.url, "--lake-root", lake.as_uri(),
            "--checkpoint", (work / "checkpoint").as_uri(), "--trigger-seconds", str(args.trigger),
        ]  # fmt: skip
        processor = spawn(
            "processor",
            processor_argv,
            pythonpath_env(
                {
                    **aws,
                    "SPARK_LOCAL_IP": "127.0.0.1",
                    "SIGNAL_PROCESSOR_SHUFFLE_PARTITIONS": "2",
                    "SIGNAL_PROCESSOR_LOG_JSON": "false",
                    "SIGNAL_PROCESSOR_LOG_LEVEL": "WARNING",
                }
            ),
            logs,
        )
        running.append(processor)
        producer_base = ["-m", "signal_producer.cli", "generate", "--stream", stream]
        producer_base += ["--no-progress", "--rate", str(args.rate)]
        producer_env = pythonpath_env({**aws, "SIGNAL_PRODUCER_LOG_JSON": "false"})
        # warm-up: a few events through the processor before anything is timed (Spark's start)
        started = time.monotonic()
        warm_argv = [
            sys.executable, *producer_base, "--events", "50", "--target-rps", "0",
            "--start-time", dt.datetime.now(dt.UTC).isoformat(), "--seed", "1",
        ]  # fmt: skip
        warm = subprocess.run(
            warm_argv,
            env=producer_env,
            capture_output=True,
            text=True,
            check=False,
        )
        if warm.returncode != 0:
            raise RuntimeError(f"warm-up producer failed: {warm.stderr[-2000:]}")
        while rows_in(lake) < 50:
            if processor.process.poll() is not None or time.monotonic() - started > 600:
                raise RuntimeError(
                    f"processor not ready:\n{processor.log_path.read_text()[-3000:]}"
                )
            time.sleep(1)
        print(f"processor up: warm-up batch in the lake after {time.monotonic() - started:.0f} s")

        receiver_port, metrics_port = free_port(), free_port()
        receiver_log = work / "received.jsonl"
        receiver_argv = [
            "-m", "signal_api.alerts.receiver", "--port", str(receiver_port),
            "--secret", SECRET, "--log", str(receiver_log),
        ]  # fmt: skip
        receiver = spawn(
            "receiver",
            receiver_argv,
            pythonpath_env({}),
            logs,
        )
        running.append(receiver)
        wait_listening(receiver, receiver_port)
        evaluator = spawn(
            "evaluator",
            ["-m", "signal_api.main", "alerts", "evaluate", "--every", str(args.every)],
            pythonpath_env(
                {
                    "SIGNAL_API_LAKE_ROOT": lake.as_uri(),
                    "SIGNAL_API_AUTH_ENABLED": "false",
                    "SIGNAL_API_LOG_JSON": "false",
                    **{f"SIGNAL_API_{k.upper()}": str(v) for k, v in overrides.items()},
                    "SIGNAL_ALERTS_WEBHOOK_URL": f"http://127.0.0.1:{receiver_port}/hook",
                    "SIGNAL_ALERTS_WEBHOOK_SECRET": SECRET,
                    "SIGNAL_ALERTS_STATE_DIR": str(work / "delivery"),
                    "SIGNAL_ALERTS_METRICS_PORT": str(metrics_port),
                }
            ),
            logs,
        )
        running.append(evaluator)
        wait_listening(evaluator, metrics_port)

        t0 = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(seconds=2)
        outages = schedule(t0, count=args.outages, lead=args.lead, on=args.on, off=args.off)
        span = args.lead + args.outages * (args.on + args.off) + args.tail
        producer = spawn(
            "producer",
            [*producer_base, "--events", str(int(args.rate * (span + 60)))]
            + ["--target-rps", str(args.rate), "--start-time", t0.isoformat()]
            + [
                f"--outage={o.code}@+{(o.start - t0).total_seconds():g}s/"
                f"+{(o.end - t0).total_seconds():g}s"
                for o in outages
            ],
            producer_env,
            logs,
        )
        running.append(producer)
        print(
            f"producer: {args.rate:g} events/s of live time from {t0:%H:%M:%S}; outages "
            + ", ".join(f"{o.code} {o.start:%H:%M:%S}-{o.end:%H:%M:%S}" for o in outages),
            flush=True,
        )
        deadline = t0 + dt.timedelta(seconds=span)
        window = rules.window
        while dt.datetime.now(dt.UTC) < deadline:
            for proc in (processor, evaluator, producer):
                if proc.process.poll() is not None:
                    raise RuntimeError(f"{proc.name} exited:\n{proc.log_path.read_text()[-3000:]}")
            got = notifications(receiver_log, outages, window)
            if all(f is not None and r is not None for f, r in got):
                break
            time.sleep(2)
        metrics = scrape(f"http://127.0.0.1:{metrics_port}/metrics")
    finally:
        for proc in reversed(running):
            proc.stop(timeout=60)
    got = notifications(receiver_log, outages, window)
    puts = put_times(lake, outages)
    fire, resolve, beyond, rows = [], [], [], []
    for k, (o, (f, r), (first_put, healthy_put)) in enumerate(zip(outages, got, puts, strict=True)):
        fire_s = resolve_s = beyond_s = None
        if f is not None and first_put is not None:
            fire_s = f["received_at"] - first_put
            met = first_put + rules.fire_after(RULE) * window.total_seconds()
            beyond_s = f["received_at"] - met
            fire.append(fire_s)
            beyond.append(beyond_s)
        if r is not None and healthy_put is not None:
            resolve_s = r["received_at"] - healthy_put
            resolve.append(resolve_s)
        rows.append({"code": o.code, "fire_s": fire_s, "resolve_s": resolve_s, "beyond": beyond_s})
        print(
            f"  outage {k + 1} ({o.code}, {o.start:%H:%M:%S} for {args.on:g} s): firing "
            + (f"{fire_s:.1f} s after its first event's put ({beyond_s:+.1f} s past persistence)"
               if fire_s is not None else "not received")
            + "; resolved "
            + (f"{resolve_s:.1f} s after the outage's end" if resolve_s is not None
               else "not received"),
            flush=True,
        )  # fmt: skip
    cycles = metrics.get("signal_alert_cycles_total", 0.0)
    live_cycle = (
        metrics["signal_alert_cycle_seconds_sum"] / metrics["signal_alert_cycle_seconds_count"]
        if metrics.get("signal_alert_cycle_seconds_count")
        else None
    )
    return {
        "outages": len(outages),
        "fire": fire,
        "resolve": resolve,
        "beyond": beyond,
        "notifications": len(received(receiver_log)),
        "evaluator_cycles": int(cycles),
        "evaluator_cycle_s_mean": None if live_cycle is None else round(live_cycle, 3),
        "dead_letters": int(metrics.get("signal_alert_dead_letters_total", 0.0)),
        "rules": rules,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 outage, 3 cycles per lake (CI)")
    parser.add_argument("--outages", type=int, default=5, help="outages in the run")
    parser.add_argument("--on", type=float, default=90.0, help="seconds each outage lasts")
    # 90 + 162 = 252 s between starts: each outage starts 12 s later in its minute than the one
    # before, so five outages sample the whole phase against the evaluator's 1-minute windows
    parser.add_argument("--off", type=float, default=162.0, help="seconds between outages")
    parser.add_argument("--lead", type=float, default=60.0, help="healthy seconds before the first")
    parser.add_argument("--tail", type=float, default=120.0, help="seconds to wait after the last")
    parser.add_argument("--rate", type=float, default=25.0, help="producer events/s")
    parser.add_argument("--trigger", type=float, default=5.0, help="processor trigger (s)")
    parser.add_argument("--every", type=float, default=15.0, help="evaluator cadence (s)")
    parser.add_argument("--settle", type=int, default=20, help="SIGNAL_API_COMPLETE_AFTER_S")
    parser.add_argument("--areas", type=int, default=1000, help="postal codes of the cycle lake")
    parser.add_argument("--baseline-areas", type=int, default=10, help="the baseline's codes")
    parser.add_argument("--cycles", type=int, default=5, help="cycles timed per synthetic lake")
    parser.add_argument("--work", type=Path, default=None, help="keep the run's files here")
    args = parser.parse_args(argv)
    if args.quick:
        # one outage (its resolve waited for in the tail), three cycles per synthetic lake
        args.outages, args.on, args.off, args.lead, args.tail = 1, 60.0, 0.0, 20.0, 150.0
        args.cycles = 3
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-alerts-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        print(f"evaluator cycle time (default rules, DuckDB, {args.cycles} cycles per lake):")
        big = cycle_seconds(work, args.areas, args.cycles)
        small = cycle_seconds(work, args.baseline_areas, args.cycles)
        print("outage-to-notification latency over the local pipeline:", flush=True)
        run = latency_run(args, work / "pipeline")
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    rules: AlertRules = run["rules"]
    figures = {
        "outages": run["outages"],
        "fired": len(run["fire"]),
        "resolved": len(run["resolve"]),
        "fire_latency_p50_s": percentile(run["fire"], 0.5),
        "fire_latency_p95_s": percentile(run["fire"], 0.95),
        "resolve_latency_p50_s": percentile(run["resolve"], 0.5),
        "resolve_latency_p95_s": percentile(run["resolve"], 0.95),
        "fire_beyond_persistence_p50_s": percentile(run["beyond"], 0.5),
        "fire_beyond_persistence_p95_s": percentile(run["beyond"], 0.95),
        "target_beyond_persistence_s": TARGET_BEYOND_PERSISTENCE_S,
        "notifications": run["notifications"],
        "dead_letters": run["dead_letters"],
        "evaluator_cycles": run["evaluator_cycles"],
        "evaluator_cycle_s_mean": run["evaluator_cycle_s_mean"],
        "window_minutes": rules.window_minutes,
        "settle_s": rules.settle_s,
        "every_s": args.every,
        "trigger_s": args.trigger,
        "producer_rps": args.rate,
        "cycle_s_1000_areas": round(big["median"], 3),
        "areas": args.areas,
        "cycle_s_baseline": round(small["median"], 3),
        "baseline_areas": args.baseline_areas,
        "cycle_ratio_vs_baseline": round(big["median"] / small["median"], 2),
    }
    print(
        f"fire latency p50 {figures['fire_latency_p50_s']} s, p95 {figures['fire_latency_p95_s']}"
        f" s; beyond persistence p95 {figures['fire_beyond_persistence_p95_s']} s (target <= "
        f"{TARGET_BEYOND_PERSISTENCE_S:g}); resolve p50 {figures['resolve_latency_p50_s']} s, "
        f"p95 {figures['resolve_latency_p95_s']} s over {figures['outages']} outage(s)"
    )
    print(
        f"cycle at {args.areas:,} codes {figures['cycle_s_1000_areas']} s vs "
        f"{figures['cycle_s_baseline']} s at {args.baseline_areas} "
        f"(x{figures['cycle_ratio_vs_baseline']}); live evaluator (the producer's 36 codes, "
        "1-minute windows): "
        f"{figures['evaluator_cycle_s_mean']} s a cycle over {figures['evaluator_cycles']} cycles"
    )
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
