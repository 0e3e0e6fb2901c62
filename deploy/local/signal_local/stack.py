"""Run Signal Stream's local stack: local AWS endpoints, the stream, and the services as they land.

`./pants run deploy/local:up` starts everything on 127.0.0.1, prints what runs where, and stops it
all on Ctrl-C. Data (kinesalite's LevelDB, the lake) lives under `.local/` in the repository.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path

import boto3

from signal_local.endpoints import LocalEndpointError, local_aws, repo_root

DEFAULT_STREAM = "mobile_coverage_logs"


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    root = repo_root() or Path.cwd()
    parser = argparse.ArgumentParser(
        prog="signal-local-up",
        description="Start Signal Stream's local stack (kinesalite, moto, stream) on 127.0.0.1.",
    )
    parser.add_argument("--data-dir", type=Path, default=root / ".local", help="state directory")
    parser.add_argument("--stream", default=DEFAULT_STREAM, help="Kinesis stream to create")
    parser.add_argument("--shards", type=int, default=4, help="shards of the stream")
    parser.add_argument(
        "--exit-after-start",
        action="store_true",
        help="start, print the endpoints, then stop (a smoke check)",
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
    return str(
        client.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamStatus"]
    )


def main(argv: list[str] | None = None) -> int:
    """Start the stack and block until interrupted."""
    args = _parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    data_dir: Path = args.data_dir
    (data_dir / "kinesis").mkdir(parents=True, exist_ok=True)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        with local_aws(data_dir / "logs", kinesis_data_path=data_dir / "kinesis") as stack:
            status = ensure_stream(stack.kinesis_url, args.stream, args.shards)
            print("Signal Stream local stack is up:")
            print(f"  kinesis (kinesalite)   {stack.kinesis_url}   stream {args.stream}: {status}")
            print(f"  glue/s3/athena (moto)  {stack.moto_url}")
            print(f"  lake                   file://{(data_dir / 'lake').resolve()}")
            print(f"  logs                   {data_dir / 'logs'}")
            print("Environment for the services:")
            for key, value in sorted(stack.env().items()):
                print(f"  export {key}={value}")
            sys.stdout.flush()
            if not args.exit_after_start:
                print("Press Ctrl-C to stop.", flush=True)
                stop.wait()
    except LocalEndpointError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print("stopped.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
