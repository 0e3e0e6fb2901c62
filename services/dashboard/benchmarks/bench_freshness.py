"""Dashboard benchmark: how long until an event put into Kinesis shows in the API and on screen.

It runs the local pipeline for real on 127.0.0.1 (kinesalite, the stream processor on local
Spark, the metrics API over the lake, the dashboard) with the producer generating a steady
stream, and opens the dashboard's Overview in Debian's Chromium so its live fragment refreshes
as it would for an engineer. Then, for every event:

  (a) API freshness: the first poll of `/v1/kpis/signal-strength` (1 s apart, the API's own
      result cache on, as deployed) whose count for the event's minute includes it;
  (b) dashboard freshness: the first render of the Overview's signal panel (from the
      dashboard's render log) whose count for that minute includes it.

"Includes" assumes events of one minute are counted in put order (batches take every shard up
to where it was read); the k-th event of a minute is included once the minute's count reaches
k. The put time of an event is its event time: the producer paces its puts at the event-time
rate, so any producer lag makes the figures worse, never better. The baseline in the same run
is the processor alone: when each event's lake file landed minus the stream's arrival time of
its record.

Also reported: the page's time to first chart (a new session opening the Overview once data
is in the lake; and, for the page opened before the first event, until its first chart).
Last line: one JSON object with
`api_fresh_p95_s` and `dashboard_fresh_p95_s` (targets ≤ 40 and ≤ 60 at 2,000 events/s and a
20 s trigger; the reference design refreshed every 10 minutes).
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import json
import math
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import boto3
import duckdb

from signal_local.endpoints import (
    ManagedProcess,
    free_port,
    local_aws,
    start_python_service,
)

CHROMIUM = os.environ.get("SIGNAL_CHROMIUM", "/usr/bin/chromium")


def percentile(values: list[float], q: float) -> float | None:
    """The q-quantile (nearest rank) of values, or None when there are none."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def inclusion_latencies(
    put_times: dict[str, list[float]], observations: list[tuple[float, dict[str, int]]]
) -> list[float]:
    """Per event, the first observation time whose count for its minute includes it, minus its
    put time. put_times: per minute (ISO bucket start), the events' put times in order;
    observations: (time, {minute: count}) in time order. Events never observed are left out."""
    latencies: list[float] = []
    for minute, times in put_times.items():
        seen = 0
        for observed_at, counts in observations:
            count = min(counts.get(minute, 0), len(times))
            while seen < count:
                latencies.append(max(0.0, observed_at - times[seen]))
                seen += 1
            if seen == len(times):
                break
    return latencies


def bucket_key(moment: dt.datetime) -> str:
    """The API's bucket_start text for the minute holding `moment`."""
    return moment.replace(second=0, microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def poll_api(
    url: str, start: dt.datetime, stop: threading.Event, out: list[tuple[float, dict[str, int]]]
) -> None:
    """Poll the signal-strength route every second; keep (time, counts per minute)."""
    end = start + dt.timedelta(hours=2)
    query = (
        f"{url}/v1/kpis/signal-strength?granularity=1m&by_network_type=false"
        f"&from={bucket_key(start)}&to={bucket_key(end)}"
    )
    while not stop.wait(1.0):
        try:
            with urllib.request.urlopen(query, timeout=10) as response:
                rows = json.loads(response.read())["rows"]
        except OSError:
            continue
        counts: dict[str, int] = collections.Counter()
        for row in rows:
            counts[row["bucket_start"]] += int(row["event_count"])
        out.append((time.time(), dict(counts)))


def render_observations(log: Path) -> list[tuple[float, dict[str, int]]]:
    """(rendered at, counts per minute) of the Overview's signal panel, from the render log."""
    result = []
    for line in log.read_text().splitlines():
        entry = json.loads(line)
        if entry["panel"] == "signal_strength" and not entry["last_good"]:
            moment = dt.datetime.fromisoformat(entry["rendered_at"]).timestamp()
            result.append((moment, entry["bucket_counts"]))
    return sorted(result, key=lambda item: item[0])


def open_dashboard(url: str, stop: threading.Event, first_chart: list[float]) -> None:
    """Keep the Overview open in Chromium (its fragment refreshes itself) until `stop`."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
        )
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        started = time.monotonic()
        page.goto(url + "/?range=1h")
        page.wait_for_selector(".js-plotly-plot", timeout=120_000)
        first_chart.append(time.monotonic() - started)  # includes waiting for the first data
        while not stop.wait(1.0):
            pass
        # a newcomer's first look, with data in the lake: a new session, navigation to chart
        fresh = browser.new_page(viewport={"width": 1400, "height": 1000})
        started = time.monotonic()
        fresh.goto(url + "/?range=1h")
        fresh.wait_for_selector(".js-plotly-plot", timeout=120_000)
        first_chart.append(time.monotonic() - started)
        browser.close()


def lake_latencies(lake: Path) -> list[float]:
    """Baseline: per event, when its events file landed in the lake (the file's mtime, written
    at the batch's commit) minus the stream's arrival time of the record (its put)."""
    mtimes = {str(p): p.stat().st_mtime for p in (lake / "events").glob("**/*.parquet")}
    if not mtimes:
        return []
    con = duckdb.connect()
    rows = con.execute(
        "SELECT filename, epoch(arrival_time) FROM read_parquet(?, filename = true)",
        [list(mtimes)],
    ).fetchall()
    return [mtimes[name] - arrival for name, arrival in rows]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Put-to-screen freshness of the dashboard over the local pipeline."
    )
    parser.add_argument("--rate", type=float, default=2000.0, help="producer events/s")
    parser.add_argument("--seconds", type=float, default=180.0, help="producer run length")
    parser.add_argument("--trigger", type=float, default=20.0, help="processor trigger (s)")
    parser.add_argument("--refresh", type=float, default=20.0, help="dashboard refresh (s)")
    parser.add_argument("--api-cache-ttl", type=float, default=10.0, help="API result cache (s)")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="seconds, not minutes: 200 events/s for 40 s, 5 s trigger and refresh",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.rate, args.seconds, args.trigger, args.refresh = 200.0, 40.0, 5.0, 5.0
        args.api_cache_ttl = 2.0
    if not Path(CHROMIUM).exists():
        print(f"error: {CHROMIUM} is missing (apt-get install -y chromium)", file=sys.stderr)
        return 1
    work = Path(tempfile.mkdtemp(prefix="bench-dashboard-"))
    lake = work / "lake"
    render_log = work / "render.jsonl"
    render_log.touch()
    stream = "bench-dashboard"
    events = int(args.rate * args.seconds)
    running: list[ManagedProcess] = []
    with local_aws(work / "logs") as stack:
        kinesis = boto3.client("kinesis", endpoint_url=stack.kinesis_url, region_name="us-east-1")
        kinesis.create_stream(StreamName=stream, ShardCount=4)
        kinesis.get_waiter("stream_exists").wait(StreamName=stream, WaiterConfig={"Delay": 1})
        env = {**stack.env(), "SIGNAL_LOG_JSON": "true"}
        with open(work / "logs" / "processor.log", "wb") as processor_log:
            processor = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "signal_processor.cli",
                    "run",
                    "--stream",
                    stream,
                    "--lake-root",
                    f"file://{lake}",
                    "--checkpoint",
                    f"file://{work / 'checkpoint'}",
                    "--trigger-seconds",
                    str(args.trigger),
                ],
                env={
                    **os.environ,
                    **env,
                    "SPARK_LOCAL_IP": "127.0.0.1",
                    "SIGNAL_PROCESSOR_SHUFFLE_PARTITIONS": "2",
                    "PYTHONPATH": os.pathsep.join(p for p in sys.path if p),
                },
                stdout=processor_log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        running.append(ManagedProcess("processor", "", processor, work / "logs/processor.log"))
        try:
            api_port = free_port()
            api = start_python_service(
                "metrics-api",
                "signal_api.main",
                port=api_port,
                log_dir=work / "logs",
                probe_path="/healthz",
                env={
                    **env,
                    "SIGNAL_API_LAKE_ROOT": f"file://{lake}",
                    "SIGNAL_API_PORT": str(api_port),
                    "SIGNAL_API_AUTH_ENABLED": "false",
                    "SIGNAL_API_CACHE_TTL_S": str(args.api_cache_ttl),
                },
            )
            running.append(api)
            dash_port = free_port()
            dashboard = start_python_service(
                "dashboard",
                "signal_dashboard.main",
                port=dash_port,
                log_dir=work / "logs",
                probe_path="/_stcore/health",
                env={
                    **env,
                    "SIGNAL_DASHBOARD_API_URL": api.url,
                    "SIGNAL_DASHBOARD_PORT": str(dash_port),
                    "SIGNAL_DASHBOARD_REFRESH_S": str(args.refresh),
                    "SIGNAL_DASHBOARD_RENDER_LOG": str(render_log),
                },
            )
            running.append(dashboard)
            print(
                f"pipeline up: API {api.url}, dashboard {dashboard.url}; waiting for Spark",
                flush=True,
            )
            time.sleep(20 if args.quick else 40)  # the processor's JVM and first empty batch
            start = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=2)
            stop = threading.Event()
            api_obs: list[tuple[float, dict[str, int]]] = []
            first_chart: list[float] = []
            threads = [
                threading.Thread(target=poll_api, args=(api.url, start, stop, api_obs)),
                threading.Thread(target=open_dashboard, args=(dashboard.url, stop, first_chart)),
            ]
            for thread in threads:
                thread.start()
            print(
                f"producer: {events:,} events at {args.rate:,.0f}/s from {start:%H:%M:%S}",
                flush=True,
            )
            producer = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "signal_producer.cli",
                    "generate",
                    "--events",
                    str(events),
                    "--rate",
                    str(args.rate),
                    "--target-rps",
                    str(args.rate),
                    "--start-time",
                    start.isoformat(),
                    "--stream",
                    stream,
                    "--no-progress",
                ],
                env={**os.environ, **env, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)},
                capture_output=True,
                text=True,
                check=False,
            )
            if producer.returncode != 0:
                print(producer.stdout[-2000:], producer.stderr[-2000:], file=sys.stderr)
                raise SystemExit("the producer failed")
            sent_done = time.time()
            # wait until the API has counted every event (or 3 triggers + refresh)
            deadline = time.monotonic() + 3 * args.trigger + args.refresh + 30
            while time.monotonic() < deadline:
                if api_obs and sum(api_obs[-1][1].values()) >= events:
                    break
                time.sleep(1)
            time.sleep(args.refresh + args.api_cache_ttl + 2)  # one more render after that
            stop.set()
            for thread in threads:
                thread.join(timeout=60)
        finally:
            for proc in reversed(running):
                proc.stop()
    step = 1.0 / args.rate
    put_times: dict[str, list[float]] = collections.defaultdict(list)
    for i in range(events):
        moment = start + dt.timedelta(seconds=i * step)
        put_times[bucket_key(moment)].append(moment.timestamp())
    api_lat = inclusion_latencies(put_times, api_obs)
    dash_lat = inclusion_latencies(put_times, render_observations(render_log))
    base_lat = lake_latencies(lake)
    figures = {
        "events": events,
        "producer_rps": args.rate,
        "producer_s": round(sent_done - start.timestamp(), 1),
        "trigger_s": args.trigger,
        "refresh_s": args.refresh,
        "api_cache_ttl_s": args.api_cache_ttl,
        "processor_fresh_p50_s": _round(percentile(base_lat, 0.5)),
        "processor_fresh_p95_s": _round(percentile(base_lat, 0.95)),
        "api_fresh_p50_s": _round(percentile(api_lat, 0.5)),
        "api_fresh_p95_s": _round(percentile(api_lat, 0.95)),
        "api_events_seen": len(api_lat),
        "dashboard_fresh_p50_s": _round(percentile(dash_lat, 0.5)),
        "dashboard_fresh_p95_s": _round(percentile(dash_lat, 0.95)),
        "dashboard_events_seen": len(dash_lat),
        "dashboard_renders": len(render_observations(render_log)),
        "time_to_first_chart_s": _round(first_chart[1] if len(first_chart) > 1 else None),
        "first_chart_after_start_s": _round(first_chart[0] if first_chart else None),
    }
    print(
        f"processor (batch committed): p50 {figures['processor_fresh_p50_s']} s, "
        f"p95 {figures['processor_fresh_p95_s']} s"
    )
    print(
        f"API (signal-strength count): p50 {figures['api_fresh_p50_s']} s, "
        f"p95 {figures['api_fresh_p95_s']} s over {len(api_lat):,} of {events:,} events"
    )
    print(
        f"dashboard (rendered panel):  p50 {figures['dashboard_fresh_p50_s']} s, "
        f"p95 {figures['dashboard_fresh_p95_s']} s over {len(dash_lat):,} events"
    )
    print(
        f"time to first chart: {figures['time_to_first_chart_s']} s with data in the lake "
        f"({figures['first_chart_after_start_s']} s for the page opened before the first event)"
    )
    print(json.dumps(figures))
    return 0


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


if __name__ == "__main__":
    sys.exit(main())
