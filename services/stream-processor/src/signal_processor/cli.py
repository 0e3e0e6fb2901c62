"""`signal-processor`: run the streaming job locally or on any Spark 4 cluster."""

from __future__ import annotations

import logging
import signal
import sys
import threading
import time
from typing import Annotated

import typer

from signal_common.logs import configure_logging
from signal_processor.settings import ProcessorSettings

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Signal Stream's stream processor: Kinesis → validate → dedup → KPIs → Parquet lake.",
)
log = logging.getLogger("signal_processor")


@app.callback()
def _main() -> None:
    """Signal Stream's stream processor."""


@app.command()
def run(
    lake_root: Annotated[str | None, typer.Option(help="Lake root URI (file:// or s3://).")] = None,
    checkpoint: Annotated[str | None, typer.Option(help="Checkpoint location.")] = None,
    stream: Annotated[str | None, typer.Option(help="Kinesis stream name.")] = None,
    endpoint_url: Annotated[str | None, typer.Option(help="Kinesis endpoint (local runs).")] = None,
    trigger_seconds: Annotated[float | None, typer.Option(help="Micro-batch interval.")] = None,
    starting_position: Annotated[
        str | None, typer.Option(help="trim_horizon | latest | at_timestamp")
    ] = None,
    max_records_per_batch: Annotated[int | None, typer.Option(help="Records per batch.")] = None,
    stop_when_idle: Annotated[
        int,
        typer.Option(help="Stop after this many consecutive batches that read nothing (0: never)."),
    ] = 0,
    timeout: Annotated[float, typer.Option(help="Stop after this many seconds (0: never).")] = 0,
) -> None:
    """Run the streaming job until interrupted (or idle / timeout)."""
    overrides = {
        "lake_root": lake_root,
        "checkpoint_location": checkpoint,
        "stream_name": stream,
        "kinesis_endpoint_url": endpoint_url,
        "trigger_seconds": trigger_seconds,
        "starting_position": starting_position,
        "max_records_per_batch": max_records_per_batch,
    }
    settings = ProcessorSettings(**{k: v for k, v in overrides.items() if v is not None})
    configure_logging(settings.log_level, json_lines=settings.log_json)

    from signal_processor.job import build_session, start_query

    spark = build_session(settings)
    query = start_query(spark, settings)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    started, idle, seen = time.monotonic(), 0, None
    try:
        while not stop.is_set() and query.isActive:
            stop.wait(0.5)
            progress = query.lastProgress
            if progress and progress["batchId"] != seen:
                seen = progress["batchId"]
                idle = idle + 1 if progress["numInputRows"] == 0 else 0
                typer.echo(
                    f"batch {seen}: {progress['numInputRows']} records, "
                    f"{progress.get('processedRowsPerSecond', 0):.0f} rows/s",
                    err=True,
                )
            if stop_when_idle and idle >= stop_when_idle:
                break
            if timeout and time.monotonic() - started > timeout:
                break
        if query.exception():
            typer.echo(f"error: the streaming query failed: {query.exception()}", err=True)
            raise typer.Exit(1)
    finally:
        query.stop()
        spark.stop()


def main() -> None:
    """Console entry point."""
    sys.exit(app())


if __name__ == "__main__":
    main()
