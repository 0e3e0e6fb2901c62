"""`signal-processor`: run the streaming job locally or on any Spark 4 cluster."""

from __future__ import annotations

import logging
import re
import signal
import sys
import threading
import time
from typing import Annotated, Any, NoReturn

import typer
from pydantic import ValidationError

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
    dedup_watermark: Annotated[
        str | None, typer.Option(help="Dedup horizon, e.g. '10 minutes' (see README).")
    ] = None,
    resume_from_lake: Annotated[
        bool | None,
        typer.Option(
            "--resume-from-lake/--no-resume-from-lake",
            help="A new checkpoint continues where the lake's last commit ended (default on).",
        ),
    ] = None,
    stop_when_idle: Annotated[
        int,
        typer.Option(help="Stop after this many consecutive batches that read nothing (0: never)."),
    ] = 0,
    timeout: Annotated[float, typer.Option(help="Stop after this many seconds (0: never).")] = 0,
) -> None:
    """Run the streaming job until interrupted (or idle / timeout)."""
    overrides: dict[str, Any] = {
        "lake_root": lake_root,
        "checkpoint_location": checkpoint,
        "stream_name": stream,
        "kinesis_endpoint_url": endpoint_url,
        "trigger_seconds": trigger_seconds,
        "starting_position": starting_position,
        "max_records_per_batch": max_records_per_batch,
        "dedup_watermark": dedup_watermark,
        "resume_from_lake": resume_from_lake,
    }
    try:
        settings = ProcessorSettings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        _fail(f"invalid setting: {_first_error(exc)}.")
    from signal_processor import wiring

    # before logging is set up: botocore's chatter stays quiet
    problem = wiring.preflight(settings)
    if problem:
        _fail(problem)
    configure_logging(settings.log_level, json_lines=settings.log_json)
    spark = wiring.build_session(settings)
    try:
        query = wiring.start_query(spark, settings)
    except Exception as exc:  # an unusable lake or checkpoint: say what, not a JVM trace
        spark.stop()
        _fail(f"the job could not start: {plain_error(exc)}")
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
        failure = query.exception()
        if failure:
            log.error("the streaming query failed", extra={"error": str(failure)[:20_000]})
            _fail(f"the streaming query failed: {plain_error(failure)}")
    finally:
        query.stop()
        spark.stop()


def _fail(sentence: str) -> NoReturn:
    typer.echo(f"error: {sentence}", err=True)
    raise typer.Exit(1)


def _first_error(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ()))
    return f"{where}: {first.get('msg', 'invalid value')}"


# Our errors, raised in Spark's Python workers, reach the driver inside a Java exception's text.
_KNOWN = re.compile(
    r"(RetentionGapError|KinesisSourceError|ProcessorError|ResourceNotFoundException"
    r"|EndpointConnectionError|NoCredentialsError)[:)]?\s*(.+)"
)


def plain_error(exc: BaseException) -> str:
    """One line for a failure: our own error's message if it is in there, else the first line."""
    text = str(exc)
    match = _KNOWN.search(text)
    if match:
        return match.group(2).strip().splitlines()[0]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0][:500] if lines else type(exc).__name__


def main() -> None:
    """Console entry point."""
    sys.exit(app())


if __name__ == "__main__":
    main()
