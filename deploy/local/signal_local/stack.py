"""Run Signal Stream's whole pipeline locally, every part a real server or process on 127.0.0.1.

`./pants run deploy/local:up` starts kinesalite (Kinesis) and moto server (Glue/S3/Athena APIs),
creates the stream, then the services: the producer (live synthetic telemetry), the stream
processor (local Spark), the catalog manager (`watch`, registering partitions in moto's Glue;
`compact --every`, folding each closed hour into one file), the metrics API (DuckDB over the
lake), the alert evaluator, the alert receivers (the local HMAC webhook receiver, and Debian's
`prometheus-alertmanager` where it is installed) and the dashboard (Streamlit over the API). It
prints the dashboard's and Alertmanager's URLs first, then what runs where, and stops
everything on Ctrl-C. State lives under `.local/` in the repository (kinesalite's LevelDB, the
lake, checkpoints, Alertmanager's data, logs).
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import boto3
import pyarrow.parquet as pq

from signal_common.lake import ALL_TABLES
from signal_local.endpoints import (
    LocalAWS,
    LocalEndpointError,
    ManagedProcess,
    _wait_until_answering,
    free_port,
    free_ports,
    local_aws,
    repo_root,
)

DEFAULT_STREAM = "mobile_coverage_logs"
# The producer's outage scenario: these postal codes go out of service a few minutes after the
# start (once Spark has warmed up and the rules have a clear window before it) and come back
# after --outage-minutes, so one run shows an alert firing and then resolving.
OUTAGE_POSTAL_CODES = ("47014", "47015")
ALERTMANAGER = "prometheus-alertmanager"  # Debian's package and binary name
# The stack's alert windows: the defaults (5-minute windows, 3 clear ones to resolve) take about
# 25 minutes to resolve an outage; 1-minute windows over a trailing 5 minutes, 2 clear windows to
# resolve, show the whole lifecycle in one ~20-minute run and still smooth over a minute's noise.
# The API gets them too, so /v1/alerts/rules publishes what the evaluator applies.
ALERT_RULES_ENV = {
    "SIGNAL_API_ALERT_WINDOW_MINUTES": "1",
    "SIGNAL_API_ALERT_RECENT_MINUTES": "5",
    "SIGNAL_API_ALERT_RESOLVE_AFTER_WINDOWS": "2",
    "SIGNAL_API_ALERT_HORIZON_MINUTES": "30",
}


@dataclass(frozen=True)
class Service:
    """A Signal Stream service started as `python -m module args…` with its own environment."""

    name: str
    module: str
    args: tuple[str, ...]
    env: dict[str, str]
    url: str = ""
    program: str = ""  # an executable to run instead of `python -m module`
    files: tuple[tuple[Path, str], ...] = ()  # written before it starts (its config)
    ready_path: str = ""  # the stack waits until `url + ready_path` answers

    def command(self) -> list[str]:
        """The argv that starts it."""
        if self.program:
            return [self.program, *self.args]
        return [sys.executable, "-m", self.module, *self.args]


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    root = repo_root() or Path.cwd()
    parser = argparse.ArgumentParser(
        prog="signal-local-up",
        description="Run Signal Stream's local pipeline (endpoints and services) on 127.0.0.1.",
    )
    parser.add_argument("--data-dir", type=Path, default=root / ".local", help="state directory")
    parser.add_argument("--stream", default=DEFAULT_STREAM, help="Kinesis stream to create")
    parser.add_argument("--shards", type=int, default=4, help="shards of the stream")
    parser.add_argument("--rate", type=float, default=20.0, help="producer events per second")
    parser.add_argument("--trigger-seconds", type=float, default=10.0, help="processor trigger")
    parser.add_argument("--api-port", type=int, default=8080, help="metrics API port (0: any)")
    parser.add_argument("--dashboard-port", type=int, default=8501, help="dashboard port (0: any)")
    parser.add_argument(
        "--refresh-seconds", type=float, default=20.0, help="dashboard live refresh interval"
    )
    parser.add_argument(
        "--compact-every",
        type=float,
        default=600.0,
        help="seconds between lake compaction passes (signal-catalog compact --every)",
    )
    parser.add_argument(
        "--compact-grace",
        type=float,
        default=3600.0,
        help="compact an hour partition once it ended this many seconds ago",
    )
    parser.add_argument(
        "--outage-after",
        type=float,
        default=3.0,
        help="minutes after the start at which the producer's outage begins",
    )
    parser.add_argument(
        "--outage-minutes", type=float, default=10.0, help="how long the outage lasts"
    )
    parser.add_argument(
        "--alertmanager",
        default=shutil.which(ALERTMANAGER),
        help=f"Alertmanager binary (default: {ALERTMANAGER} on PATH, if installed)",
    )
    parser.add_argument(
        "--no-alertmanager",
        dest="alertmanager",
        action="store_const",
        const=None,
        help="run without Alertmanager (the local receiver alone gets the notifications)",
    )
    parser.add_argument(
        "--endpoints-only", action="store_true", help="start only kinesalite and moto server"
    )
    parser.add_argument(
        "--exit-after-start",
        action="store_true",
        help="start everything, wait until the API serves data, then stop (a smoke check)",
    )
    return parser.parse_args(argv)


def ensure_stream(endpoint_url: str, name: str, shards: int) -> str:
    """Create the stream unless it exists; return its status."""
    client = boto3.client("kinesis", endpoint_url=endpoint_url, region_name="us-east-1")
    if name not in client.list_streams(Limit=1000)["StreamNames"]:
        client.create_stream(StreamName=name, ShardCount=shards)
        client.get_waiter("stream_exists").wait(
            StreamName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30}
        )
    summary = client.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
    return str(summary["StreamStatus"])


def alertmanager_config() -> str:
    """Alertmanager's config for the stack: one route, grouped per alert, to no integration.

    The evaluator posts each transition to Alertmanager's /api/v2/alerts and, signed, to the
    local receiver, whose log is the record either way. Alertmanager's own webhook could not
    sign its requests (the receiver answers 401 to those), so it notifies no one: it shows the
    alerts (UI, /api/v2/alerts) for silencing and routing to be tried by hand.
    """
    return (
        "route:\n"
        "  receiver: signal-local\n"
        "  group_by: [alert_id]\n"
        "receivers:\n"
        "  - name: signal-local\n"
    )


def alert_services(
    common: dict[str, str], args: argparse.Namespace, *, lake: str, dashboard_url: str
) -> list[Service]:
    """The alert evaluator and where it delivers: the local receiver, and Alertmanager if any."""
    data: Path = args.data_dir.resolve()
    log_dir = data / "logs"
    receiver_port, metrics_port, am_port = free_ports(3)
    receiver_url = f"http://127.0.0.1:{receiver_port}"
    secret = secrets.token_hex(16)  # this run's webhook key, shared by evaluator and receiver
    planned = [
        Service(
            "alert-receiver",
            "signal_api.alerts.receiver",
            (
                "--port",
                str(receiver_port),
                "--secret",
                secret,
                "--log",
                str(log_dir / "alerts-received.jsonl"),
            ),
            common,
            url=receiver_url,
        )
    ]
    delivery = {
        "SIGNAL_ALERTS_WEBHOOK_URL": f"{receiver_url}/signal",
        "SIGNAL_ALERTS_WEBHOOK_SECRET": secret,
    }
    if args.alertmanager:
        am_dir = data / "alertmanager"
        config = am_dir / "alertmanager.yml"
        planned.append(
            Service(
                "alertmanager",
                "",
                (
                    f"--config.file={config}",
                    f"--storage.path={am_dir / 'data'}",
                    f"--web.listen-address=127.0.0.1:{am_port}",
                    "--cluster.listen-address=",  # empty: no gossip, no other port
                ),
                {},
                url=f"http://127.0.0.1:{am_port}",
                program=args.alertmanager,
                files=((config, alertmanager_config()),),
                ready_path="/-/ready",
            )
        )
        delivery["SIGNAL_ALERTS_ALERTMANAGER_URL"] = planned[-1].url
    planned.append(
        Service(
            # one evaluator per deployment (it notifies): the API reads its state from the lake
            "alert-evaluator",
            "signal_api.main",
            ("alerts", "evaluate", "--every", "60"),
            {
                **common,
                **ALERT_RULES_ENV,
                **delivery,
                "SIGNAL_API_LAKE_ROOT": lake,
                "SIGNAL_API_AUTH_ENABLED": "false",
                "SIGNAL_ALERTS_STATE_DIR": str(data / "alert-delivery"),
                "SIGNAL_ALERTS_DASHBOARD_URL": dashboard_url,
                "SIGNAL_ALERTS_METRICS_PORT": str(metrics_port),
            },
            url=f"http://127.0.0.1:{metrics_port}/metrics",
        )
    )
    return planned


def services(stack: LocalAWS, args: argparse.Namespace) -> list[Service]:
    """The services of the pipeline, wired to the local endpoints and the local lake."""
    data: Path = args.data_dir.resolve()
    lake = f"file://{data / 'lake'}"
    api_port = args.api_port or free_port()
    dashboard_port = args.dashboard_port or free_port()
    common = {**stack.env(), "SIGNAL_LOG_JSON": "true"}
    # events at the current time (the producer's default start is 10 minutes ago, which a
    # replay wants but a live stream does not); the outage starts and ends relative to it
    start = dt.datetime.now(dt.UTC).replace(microsecond=0)
    outage_end = args.outage_after + args.outage_minutes
    outage = f"{','.join(OUTAGE_POSTAL_CODES)}@+{args.outage_after:g}m/+{outage_end:g}m"
    return [
        Service(
            "producer",
            "signal_producer.cli",
            (
                "generate",
                "--events",
                "100000000",
                "--rate",
                str(args.rate),
                "--target-rps",
                str(args.rate),
                "--late-rate",
                "0.02",
                "--duplicate-rate",
                "0.01",
                "--malformed-rate",
                "0.005",
                "--start-time",
                start.isoformat(),
                "--outage",
                outage,
                "--stream",
                args.stream,
                "--no-progress",
            ),
            common,
        ),
        Service(
            "stream-processor",
            "signal_processor.cli",
            (
                "run",
                "--stream",
                args.stream,
                "--lake-root",
                lake,
                "--checkpoint",
                f"file://{data / 'checkpoints' / 'stream-processor'}",
                "--trigger-seconds",
                str(args.trigger_seconds),
            ),
            {**common, "SIGNAL_PROCESSOR_SHUFFLE_PARTITIONS": "2"},
        ),
        Service(
            "catalog-manager",
            "signal_catalog.cli",
            ("watch", "--interval", "15"),
            {**common, "SIGNAL_CATALOG_LAKE_ROOT": lake},
        ),
        Service(
            "lake-compaction",
            "signal_catalog.cli",
            ("compact", "--every", str(args.compact_every)),
            {
                **common,
                "SIGNAL_CATALOG_LAKE_ROOT": lake,
                "SIGNAL_CATALOG_COMPACT_GRACE_S": str(args.compact_grace),
            },
        ),
        Service(
            "metrics-api",
            "signal_api.main",
            (),
            {
                **common,
                **ALERT_RULES_ENV,
                "SIGNAL_API_LAKE_ROOT": lake,
                "SIGNAL_API_AUTH_ENABLED": "false",
                "SIGNAL_API_PORT": str(api_port),
                # results live as long as one processor trigger: nothing fresher can exist
                "SIGNAL_API_CACHE_TTL_S": str(args.trigger_seconds),
            },
            url=f"http://127.0.0.1:{api_port}",
        ),
        *alert_services(
            common, args, lake=lake, dashboard_url=f"http://127.0.0.1:{dashboard_port}"
        ),
        Service(
            "dashboard",
            "signal_dashboard.main",
            (),
            {
                **common,
                "SIGNAL_DASHBOARD_API_URL": f"http://127.0.0.1:{api_port}",
                "SIGNAL_DASHBOARD_PORT": str(dashboard_port),
                "SIGNAL_DASHBOARD_REFRESH_S": str(args.refresh_seconds),
                "SIGNAL_DASHBOARD_LOG_JSON": "true",
            },
            url=f"http://127.0.0.1:{dashboard_port}",
        ),
    ]


def start_service(service: Service, log_dir: Path) -> ManagedProcess:
    """Start one service in its own process group, logging to `<log_dir>/<name>.log`."""
    env = {
        **os.environ,
        **service.env,
        "PYTHONPATH": os.pathsep.join(p for p in sys.path if p),
        "SPARK_LOCAL_IP": "127.0.0.1",
    }
    for path, text in service.files:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    log_path = log_dir / f"{service.name}.log"
    with open(log_path, "ab") as log_file:
        process = subprocess.Popen(
            service.command(),
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    proc = ManagedProcess(service.name, service.url, process, log_path)
    if service.ready_path:
        _wait_until_answering(proc, service.ready_path, timeout=60)
    return proc


def wait_for_api_data(url: str, processes: list[ManagedProcess], timeout: float) -> None:
    """Block until the API reports processed batches (or a process dies / time runs out)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for proc in processes:
            if proc.process.poll() is not None:
                raise LocalEndpointError(f"{proc.name} exited early; see {proc.log_path}")
        try:
            with urllib.request.urlopen(f"{url}/v1/pipeline", timeout=5) as response:
                if b'"batches":0' not in response.read().replace(b" ", b""):
                    return
        except OSError:
            pass
        time.sleep(2)
    raise LocalEndpointError(f"the API at {url} served no pipeline data within {timeout:.0f}s")


def wait_for_dashboard(processes: list[ManagedProcess], timeout: float = 60) -> None:
    """Block until the dashboard's Streamlit server answers its health check."""
    dashboard = next(p for p in processes if p.name == "dashboard")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if dashboard.process.poll() is not None:
            raise LocalEndpointError(f"the dashboard exited early; see {dashboard.log_path}")
        try:
            with urllib.request.urlopen(f"{dashboard.url}/_stcore/health", timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(1)
    raise LocalEndpointError(
        f"the dashboard at {dashboard.url} did not answer within {timeout:.0f}s"
    )


def sync_catalog(service: Service, log_dir: Path) -> None:
    """Create the Glue database and tables once, before `watch` keeps partitions current."""
    proc = start_service(Service(service.name, service.module, ("sync",), service.env), log_dir)
    if proc.process.wait(timeout=300) != 0:
        raise LocalEndpointError(f"signal-catalog sync failed; see {proc.log_path}")


def run_stack(
    stack: LocalAWS, args: argparse.Namespace, running: list[ManagedProcess], stop: threading.Event
) -> None:
    """Create the stream, start the services, print what runs where, wait for Ctrl-C."""
    data_dir: Path = args.data_dir
    log_dir = data_dir / "logs"
    status = ensure_stream(stack.kinesis_url, args.stream, args.shards)
    planned = [] if args.endpoints_only else services(stack, args)
    by_name = {service.name: service for service in planned}
    if "dashboard" in by_name:
        print(f"Dashboard: {by_name['dashboard'].url}   (live data within about a minute)")
    if "alertmanager" in by_name:
        print(f"Alertmanager: {by_name['alertmanager'].url}   (the outage's alerts)")
    if "alert-receiver" in by_name:
        receiver = by_name["alert-receiver"]
        print(f"Alert notifications: {receiver.args[receiver.args.index('--log') + 1]}")
    print("Signal Stream local stack:", flush=True)
    print(f"  kinesis (kinesalite)   {stack.kinesis_url}   stream {args.stream}: {status}")
    print(f"  glue/s3/athena (moto)  {stack.moto_url}")
    print(f"  lake                   file://{(data_dir / 'lake').resolve()}")
    api: ManagedProcess | None = None
    if not args.endpoints_only:
        for service in planned:
            if service.name == "catalog-manager":
                sync_catalog(service, log_dir)
            running.append(start_service(service, log_dir))
            where = service.url or f"pid {running[-1].pid}"
            print(f"  {service.name:<22} {where}   log {log_dir / service.name}.log")
        api = next(p for p in running if p.name == "metrics-api")
        print(f"  API docs               {api.url}/docs")
    print("Environment for running services by hand:")
    for key, value in sorted(stack.env().items()):
        print(f"  export {key}={value}")
    sys.stdout.flush()
    if args.exit_after_start:
        if api is not None:
            wait_for_api_data(api.url, running, timeout=300)
            wait_for_dashboard(running)
            print("the pipeline is serving data; stopping (--exit-after-start).")
        return
    print("Press Ctrl-C to stop.", flush=True)
    while not stop.wait(1):
        for proc in running:
            if proc.process.poll() is not None:
                print(f"warning: {proc.name} exited; see {proc.log_path}", flush=True)
                running.remove(proc)
                break


def lake_without_lineage(lake: Path) -> Path | None:
    """A data file of an older lake layout (no commit_seq column), if the lake has one: readers
    cannot mix it with current files."""
    for table in ALL_TABLES:
        newest = max((lake / table.name).glob("dt=*/hour=*/*.parquet"), default=None)
        if newest is not None and "commit_seq" not in pq.read_schema(newest).names:
            return newest
    return None


def main(argv: list[str] | None = None) -> int:
    """Start the stack and block until interrupted."""
    args = _parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    data_dir: Path = args.data_dir
    log_dir = data_dir / "logs"
    (data_dir / "kinesis").mkdir(parents=True, exist_ok=True)
    (data_dir / "lake").mkdir(parents=True, exist_ok=True)
    log_dir.mkdir(parents=True, exist_ok=True)
    old = lake_without_lineage(data_dir / "lake")
    if old is not None:
        print(
            f"error: {old} was written before the lake had lineage columns (commit_seq, "
            f"compacted); remove {data_dir.resolve()} (or pass another --data-dir) and start again",
            file=sys.stderr,
        )
        return 1
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    running: list[ManagedProcess] = []
    try:
        with local_aws(log_dir, kinesis_data_path=data_dir / "kinesis") as stack:
            try:
                run_stack(stack, args, running, stop)
            finally:  # services first: they still need the endpoints while they flush
                for proc in reversed(running):
                    proc.stop()
    except LocalEndpointError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print("stopped.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
