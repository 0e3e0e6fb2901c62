"""`signal-producer`: generate synthetic telemetry or replay a legacy CSV into Kinesis."""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import functools
import inspect
import json
import signal
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Annotated, Any, NoReturn, get_type_hints

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from signal_common.logs import configure_logging
from signal_common.schema import QUARANTINE_REASONS
from signal_producer import wiring
from signal_producer.adapters.dead_letters import DeadLetters
from signal_producer.adapters.kinesis import Summary
from signal_producer.adapters.sources import SourceError
from signal_producer.core.generator import GeneratorConfig, generate_events, generate_records
from signal_producer.core.legacy import LEGACY_COLUMNS, LegacyRowError, event_to_legacy_row
from signal_producer.core.records import GeneratedRecord
from signal_producer.core.replay import (
    LegacyHeaderError,
    ReplayStats,
    check_header,
    replay_records,
)
from signal_producer.core.scenarios import ScenarioError, parse_late_delay, parse_outage
from signal_producer.settings import ProducerSettings, get_settings

app = typer.Typer(
    help="Send telemetry events to a Kinesis data stream: synthetic (generate) or a legacy "
    "mobile_logs.csv (replay). Settings come from SIGNAL_PRODUCER_* variables; options override.",
    no_args_is_help=True,
    add_completion=False,
)
err = Console(stderr=True)

EXIT_DEAD_LETTERED = 1
EXIT_FATAL = 2
EXIT_INTERRUPTED = 130

StreamOpt = Annotated[str | None, typer.Option("--stream", help="Stream name.")]
EndpointOpt = Annotated[
    str | None, typer.Option("--endpoint-url", help="Kinesis endpoint (local kinesalite).")
]
RpsOpt = Annotated[
    float | None, typer.Option("--target-rps", help="Send rate in records/s (0: unlimited).")
]
DeadLetterOpt = Annotated[
    str | None,
    typer.Option(
        "--dead-letter",
        help="Where records Kinesis never accepted go (JSON lines): a file, s3://BUCKET/KEY or "
        "s3://BUCKET/PREFIX/ (one object per run, uploaded when the run ends).",
        metavar="PATH|S3URL",
        show_default=False,
    ),
]
GroundTruthOpt = Annotated[
    Path | None,
    typer.Option(
        "--ground-truth", help="Write accepted records here (JSON lines; Parquet if .parquet)."
    ),
]
KeyOpt = Annotated[
    str | None, typer.Option("--partition-key", help="Event field used as partition key.")
]
ConcurrencyOpt = Annotated[
    int | None, typer.Option("--concurrency", help="Concurrent PutRecords calls.")
]
AttemptsOpt = Annotated[
    int | None, typer.Option("--max-attempts", help="Sends per record before dead-lettering.")
]
ProgressOpt = Annotated[bool, typer.Option("--progress/--no-progress", help="Live progress bar.")]
FaultRateOpt = Annotated[
    float,
    typer.Option(
        "--fault-rate", help="Chaos testing: fraction of entries failed on purpose (throttled)."
    ),
]
FaultRoundsOpt = Annotated[
    int, typer.Option("--fault-rounds", help="Chaos testing: sends of a record that may fail.")
]


def _settings(**overrides: Any) -> ProducerSettings:
    base = get_settings()
    values = {k: v for k, v in overrides.items() if v is not None}
    return base.model_copy(update=values) if values else base


@dataclass(frozen=True)
class SendOptions:
    """The options every sending command takes (generate, replay), declared once."""

    stream: StreamOpt = None
    endpoint_url: EndpointOpt = None
    target_rps: RpsOpt = None
    partition_key: KeyOpt = None
    concurrency: ConcurrencyOpt = None
    max_attempts: AttemptsOpt = None
    dead_letter: DeadLetterOpt = None
    ground_truth: GroundTruthOpt = None
    progress: ProgressOpt = True

    def settings(self) -> ProducerSettings:
        """Settings with these overrides applied; logging configured."""
        settings = _settings(
            stream_name=self.stream,
            kinesis_endpoint_url=self.endpoint_url,
            target_rps=self.target_rps,
            partition_key=self.partition_key,
            concurrency=self.concurrency,
            max_attempts=self.max_attempts,
            dead_letter_path=self.dead_letter or None,
            ground_truth_path=str(self.ground_truth) if self.ground_truth else None,
        )
        configure_logging(settings.log_level, json_lines=settings.log_json)
        return settings


SEND = SendOptions()  # the default a command names; with_send_options always passes its own


def with_send_options(command: Callable[..., None]) -> Callable[..., None]:
    """A command whose `send: SendOptions` parameter stands for the send options, in its place.

    Typer reads a command's options from its signature, so the wrapper's signature lists
    SendOptions' fields where `send` was (the --help order stays the command's) and the wrapper
    hands the command one SendOptions built from them.
    """
    hints = get_type_hints(SendOptions, include_extras=True)
    options = [
        inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=f.default,
                          annotation=hints[f.name])
        for f in dataclasses.fields(SendOptions)
    ]  # fmt: skip
    signature = inspect.signature(command, eval_str=True)
    parameters: list[inspect.Parameter] = []
    for parameter in signature.parameters.values():
        parameters += options if parameter.name == "send" else [parameter]

    @functools.wraps(command)
    def wrapper(**kwargs: Any) -> None:
        send = SendOptions(**{o.name: kwargs.pop(o.name) for o in options})
        command(send=send, **kwargs)

    wrapper.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in parameters]
    )
    return wrapper


@contextmanager
def _stop_on_signals() -> Iterator[threading.Event]:
    """SIGINT/SIGTERM set the event (the writer flushes and stops); a second one aborts."""
    stop = threading.Event()

    def handler(signum: int, frame: FrameType | None) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        err.print(f"[yellow]{signal.Signals(signum).name}: flushing in-flight batches…[/]")
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _error(message: str) -> None:
    """One plain `error: …` line on stderr (no markup, never wrapped)."""
    err.print(f"error: {message}", style="red", markup=False, highlight=False, soft_wrap=True)


def _fail(message: str, code: int = EXIT_FATAL) -> NoReturn:
    """End the command with one plain sentence on stderr (an expected failure, no traceback)."""
    _error(message)
    raise typer.Exit(code)


def _summary_table(summary: Summary) -> Table:
    table = Table(title="signal-producer summary", show_header=False)
    for name, value in summary.as_dict().items():
        if value is not None:
            table.add_row(name, str(value))
    return table


def _send(
    records: Iterable[GeneratedRecord],
    settings: ProducerSettings,
    *,
    total: int | None,
    speedup: float = 0.0,
    progress: bool,
    fault_rate: float = 0.0,
    fault_rounds: int = 3,
) -> tuple[Summary, DeadLetters]:
    """Send the records; the run's summary and where its dead letters are (after upload)."""
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rps]:>9,.0f} rec/s"),
        TextColumn("failed {task.fields[failed]:,}"),
        TextColumn("retried {task.fields[retried]:,}"),
        TextColumn("dead {task.fields[dead]:,}"),
        TimeElapsedColumn(),
    )
    try:
        target = wiring.dead_letters(settings)
    except wiring.ProducerError as exc:
        _fail(str(exc))
    try:
        client = wiring.connect(settings)
    except wiring.ProducerError as exc:
        target.finish(0)  # nothing was sent: no spool file is left behind
        _fail(str(exc))
    with (
        wiring.open_writer(
            settings,
            client,
            speedup=speedup,
            fault_rate=fault_rate,
            fault_rounds=fault_rounds,
            dead_letter_target=target,
        ) as writer,
        _stop_on_signals() as stop,
        Progress(*columns, console=err, disable=not progress) as bar,
    ):
        task = bar.add_task(
            f"→ {settings.stream_name}", total=total, rps=0.0, failed=0, retried=0, dead=0
        )

        def on_progress(s: Summary) -> None:
            elapsed = max(bar.tasks[0].elapsed or 0.0, 1e-6)
            bar.update(
                task,
                completed=s.sent + s.dead_lettered,
                rps=s.sent / elapsed,
                failed=s.failed,
                retried=s.retried,
                dead=s.dead_lettered,
            )

        summary = writer.run(records, stop=stop, on_progress=on_progress)
    return summary, target


def _finish(sent: tuple[Summary, DeadLetters], extra: dict[str, Any]) -> None:
    summary, dead_letters = sent
    if summary.dead_lettered:
        extra = {**extra, "dead_letter": dead_letters.location}
    err.print(_summary_table(summary))
    print(json.dumps({**summary.as_dict(), **extra}), flush=True)
    if dead_letters.problem:
        _error(dead_letters.problem)
    if summary.dead_lettered:
        err.print(
            f"{summary.dead_lettered} record(s) dead-lettered: {dead_letters.location}",
            style="red",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
    if summary.fatal_error:
        raise typer.Exit(EXIT_FATAL)
    if summary.dead_lettered:
        raise typer.Exit(EXIT_DEAD_LETTERED)
    if summary.interrupted:
        raise typer.Exit(EXIT_INTERRUPTED)


def _generator_config(
    *,
    events: int,
    seed: int,
    start_time: str | None,
    rate: float,
    devices: int,
    late_rate: float,
    late_delay: str,
    duplicate_rate: float,
    malformed_rate: float,
    malformed_reasons: list[str] | None,
    outage: list[str] | None,
    partition_key: str,
) -> GeneratorConfig:
    try:
        extra: dict[str, Any] = {}
        if start_time:
            extra["start_time"] = dt.datetime.fromisoformat(start_time.replace("Z", "+00:00"))
            if extra["start_time"].tzinfo is None:
                extra["start_time"] = extra["start_time"].replace(tzinfo=dt.UTC)
        origin = extra.get("start_time") or GeneratorConfig(events=0).start_time
        extra["start_time"] = origin
        return GeneratorConfig(
            events=events,
            seed=seed,
            rate=rate,
            devices=devices,
            late_rate=late_rate,
            late_delay=parse_late_delay(late_delay),
            duplicate_rate=duplicate_rate,
            malformed_rate=malformed_rate,
            malformed_reasons=tuple(malformed_reasons or QUARANTINE_REASONS),
            outages=tuple(parse_outage(spec, origin=origin) for spec in outage or ()),
            partition_key=partition_key,
            **extra,
        )
    except (ScenarioError, ValueError) as exc:
        raise typer.BadParameter(str(exc)) from None


@app.command()
@with_send_options
def generate(
    events: Annotated[int, typer.Option(help="Records to send in total (all kinds).")] = 10_000,
    seed: Annotated[
        int, typer.Option(help="Random seed; the same seed gives the same records.")
    ] = 0,
    start_time: Annotated[
        str | None,
        typer.Option(help="Event time of the first record (ISO-8601; default now-10min)."),
    ] = None,
    rate: Annotated[float, typer.Option(help="Events per second of event time.")] = 50.0,
    devices: Annotated[int, typer.Option(help="Devices in the fleet.")] = 500,
    late_rate: Annotated[float, typer.Option(help="Fraction of events that arrive late.")] = 0.0,
    late_delay: Annotated[
        str,
        typer.Option(
            help="Lateness distribution (s): mix | mix:MEAN:MIN:MAX | exp:MEAN | uniform:MIN:MAX "
            "| fixed:S. mix = 80% exponential (mean 120 s), 20% 1-6 hours late."
        ),
    ] = "mix",
    duplicate_rate: Annotated[float, typer.Option(help="Fraction of exact re-sends.")] = 0.0,
    malformed_rate: Annotated[float, typer.Option(help="Fraction of malformed records.")] = 0.0,
    malformed_reason: Annotated[
        list[str] | None,
        typer.Option(help=f"Only these defects (repeatable): {', '.join(QUARANTINE_REASONS)}."),
    ] = None,
    outage: Annotated[
        list[str] | None,
        typer.Option(
            help="Outage (repeatable): POSTAL1,POSTAL2@START/END, times ISO-8601 or +N[s|m|h] "
            "after --start-time, e.g. 47015,47016@+2m/+5m."
        ),
    ] = None,
    send: SendOptions = SEND,
    fault_rate: FaultRateOpt = 0.0,
    fault_rounds: FaultRoundsOpt = 3,
) -> None:
    """Generate synthetic telemetry (with optional scenarios) and send it."""
    settings = send.settings()
    config = _generator_config(
        events=events,
        seed=seed,
        start_time=start_time,
        rate=rate,
        devices=devices,
        late_rate=late_rate,
        late_delay=late_delay,
        duplicate_rate=duplicate_rate,
        malformed_rate=malformed_rate,
        malformed_reasons=malformed_reason,
        outage=outage,
        partition_key=settings.partition_key,
    )
    sent = _send(
        generate_records(config),
        settings,
        total=events,
        progress=send.progress,
        fault_rate=fault_rate,
        fault_rounds=fault_rounds,
    )
    _finish(sent, {"source": "generate", "seed": seed})


@app.command()
@with_send_options
def replay(
    file: Annotated[
        str,
        typer.Argument(
            help="A mobile_logs.csv with the legacy columns: a local path or s3://BUCKET/KEY "
            "(read as a stream through SIGNAL_PRODUCER_S3_ENDPOINT_URL, if set).",
            metavar="CSV",
            show_default=False,
        ),
    ],
    base_date: Annotated[
        str | None, typer.Option(help="Date of rows that only have a time of day (default today).")
    ] = None,
    speedup: Annotated[
        float, typer.Option(help="Replay at N times the original cadence (0: as fast as possible).")
    ] = 0.0,
    send: SendOptions = SEND,
) -> None:
    """Replay a legacy mobile_logs.csv; bad rows are reported with their line number and skipped."""
    settings = send.settings()
    try:
        day = dt.date.fromisoformat(base_date) if base_date else dt.datetime.now(dt.UTC).date()
    except ValueError:
        raise typer.BadParameter(f"--base-date {base_date!r} is not YYYY-MM-DD") from None
    if speedup < 0:
        raise typer.BadParameter("--speedup must be >= 0")
    try:
        source = wiring.open_source(file, settings)
        check_header(next(csv.reader([source.header_line()]), None), source=source.display)
        total = source.count_rows()
    except (SourceError, LegacyHeaderError) as exc:
        _fail(str(exc))
    stats = ReplayStats()

    def report(exc: LegacyRowError) -> None:
        # one unwrapped line per bad row, so it can be grepped and opened at FILE:LINE
        err.print(
            f"{source.display}:{exc.line_number}: skipped: {exc.message}",
            style="yellow",
            soft_wrap=True,
            markup=False,
            highlight=False,
        )

    try:
        with source.lines() as lines:
            records = replay_records(
                lines,
                source=source.name,
                base_date=day,
                partition_key=settings.partition_key,
                stats=stats,
                on_bad_row=report,
            )
            sent = _send(records, settings, total=total, speedup=speedup, progress=send.progress)
    except (SourceError, LegacyHeaderError) as exc:
        # the records read before the failure were sent (the writer flushes on the way out)
        _fail(f"{exc} ({stats.rows} row(s) had been read)")
    extra = {"source": source.display, "rows": stats.rows, "bad_rows": stats.bad_rows}
    _finish(sent, extra)


@app.command("sample-csv")
def sample_csv(
    output: Annotated[Path, typer.Argument(help="Where to write the legacy-format CSV.")],
    events: Annotated[int, typer.Option(help="Rows to write.")] = 200,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 7,
    start_time: Annotated[str, typer.Option(help="Event time of the first row.")] = (
        "2026-01-15T08:00:00Z"
    ),
    rate: Annotated[float, typer.Option(help="Events per second of event time.")] = 0.5,
) -> None:
    """Write generated events as a legacy mobile_logs.csv (for replay demos and tests)."""
    config = _generator_config(
        events=events, seed=seed, start_time=start_time, rate=rate, devices=50, late_rate=0.0,
        late_delay="mix", duplicate_rate=0.0, malformed_rate=0.0, malformed_reasons=None,
        outage=None, partition_key="device_id",
    )  # fmt: skip
    try:
        handle = output.open("w", encoding="utf-8", newline="")
    except OSError as exc:
        _fail(f"cannot write {output}: {exc.strerror}")
    with handle:
        writer = csv.DictWriter(handle, fieldnames=list(LEGACY_COLUMNS))
        writer.writeheader()
        for payload in generate_events(config):
            writer.writerow(event_to_legacy_row(payload))
    err.print(f"wrote {events} rows to {output}")


def main() -> None:
    """Console entry point."""
    app()


if __name__ == "__main__":
    main()
