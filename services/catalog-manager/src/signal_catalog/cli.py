"""`signal-catalog`: keep the Glue Data Catalog true to the lake (sync, watch, crawlers, drift,
validate) and the lake itself compact (compact).

Exit codes: 0 ok · 1 disagreement found (drift, failed smoke query) · 2 bad settings or usage ·
3 change refused (incompatible schema, table location elsewhere; use --force) · 4 AWS or lake
problem (permissions, missing database or lake path, throttling) · 5 crawlers timed out.
"""

from __future__ import annotations

import datetime as dt
import functools
import sys
import time
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn
from rich.table import Table

from signal_catalog.core.plan import Action
from signal_catalog.core.tables import CATALOG_TABLES
from signal_catalog.errors import CatalogError
from signal_catalog.operations.checks import drift, validate
from signal_catalog.operations.compaction import CompactionResult, PartitionCompaction, compact
from signal_catalog.operations.crawlers import (
    CrawlerReport,
    crawler_status,
    create_crawlers,
    start_crawlers,
)
from signal_catalog.operations.sync import SyncResult, TableReport, sync, watch
from signal_catalog.settings import CatalogSettings, PartitionMode, get_settings
from signal_catalog.wiring import catalog_from, engine_from, lake_from
from signal_common.lake import ALL_TABLES, LakeTable
from signal_common.logs import configure_logging

EXIT_DISAGREEMENT = 1
EXIT_CONFIG = 2
EXIT_REFUSED = 3

F = TypeVar("F", bound=Callable[..., Any])

app = typer.Typer(
    help="Keep the Glue Data Catalog true to the Signal Stream lake.",
    no_args_is_help=True,
    add_completion=False,
)
crawlers_app = typer.Typer(
    help="Glue crawlers, one per table (slow, ≥10 DPU-minutes a run; sync is the fast path).",
    no_args_is_help=True,
)
app.add_typer(crawlers_app, name="crawlers")

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

TablesOption = Annotated[
    list[str] | None,
    typer.Option("--table", "-t", help="Only this table (repeatable). Default: every table."),
]
VerboseOption = Annotated[bool, typer.Option("--verbose", "-v", help="Log at the settings' level.")]


def _fail(message: str, code: int) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(code)


def expected_failures(fn: F) -> F:
    """Turn expected failures into one line on stderr and a documented exit code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except CatalogError as exc:
            raise _fail(exc.one_line(), exc.exit_code) from None
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
            )
            raise _fail(f"invalid settings (SIGNAL_CATALOG_*): {problems}", EXIT_CONFIG) from None

    return wrapper  # type: ignore[return-value]


def _setup(verbose: bool) -> CatalogSettings:
    settings = get_settings()
    configure_logging(settings.log_level if verbose else "WARNING", json_lines=settings.log_json)
    return settings


def _tables(
    names: list[str] | None, *, known: tuple[LakeTable, ...] = ALL_TABLES
) -> list[LakeTable]:
    """The tables named (default: every table of `known`: the stream tables, or for `sync`
    every table of the catalog)."""
    if not names:
        return list(known)
    by_name = {t.name: t for t in known}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise _fail(f"unknown table(s) {unknown}; known: {sorted(by_name)}", EXIT_CONFIG)
    return [by_name[n] for n in names]


def _sync_table(result: SyncResult, settings: CatalogSettings) -> Table:
    table = Table(title=f"Glue database {settings.glue_database} ← {settings.lake_root}")
    table.add_column("table", no_wrap=True)
    for column in ("mode", "table change", "partitions added", "partitions in lake"):
        table.add_column(column)
    table.add_column("notes", overflow="fold")
    for r in result.tables:
        style = {"refused": "red", "created": "green", "updated": "yellow"}.get(r.action.value)
        present = "-" if r.mode is PartitionMode.PROJECTION else str(r.partitions_present)
        table.add_row(
            r.table,
            r.mode.value,
            f"[{style}]{r.action.value}[/]" if style else r.action.value,
            str(r.partitions_added),
            present,
            "; ".join(r.notes),
        )
    return table


@app.command("sync")
@expected_failures
def sync_command(
    table: TablesOption = None,
    force: Annotated[
        bool,
        typer.Option(help="Apply incompatible schema changes and relocate tables anyway."),
    ] = False,
    verbose: VerboseOption = False,
) -> None:
    """Create/update the database and tables from libs/common (alert_events too) and register
    new partitions."""
    settings = _setup(verbose)
    tables = _tables(table, known=CATALOG_TABLES)
    catalog, lake = catalog_from(settings), lake_from(settings)
    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), console=err, transient=True
    ) as progress:
        task = progress.add_task("syncing tables", total=len(tables))

        def advance(report: TableReport) -> None:
            progress.update(task, advance=1, description=f"synced {report.table}")

        result = sync(
            catalog,
            lake,
            tables,
            modes=settings.mode_of,
            dt_range=settings.projection_dt_range,
            force=force,
            on_table=advance,
        )
    if result.database_created:
        out.print(f"created database {settings.glue_database}")
    out.print(_sync_table(result, settings))
    changed_views = [name for name, action in result.views.items() if action is not Action.NONE]
    out.print(
        f"{sum(r.action is not Action.NONE for r in result.tables)} table change(s), "
        f"{result.partitions_added} partition(s) added, "
        f"{len(result.views)} KPI view(s) ({len(changed_views)} created or updated)"
    )
    if result.refused:
        names = ", ".join(r.table for r in result.refused)
        raise _fail(
            f"refused incompatible change(s) to {names} (see notes); rerun with --force to apply",
            EXIT_REFUSED,
        )


@app.command("watch")
@expected_failures
def watch_command(
    table: TablesOption = None,
    interval: Annotated[
        float | None,
        typer.Option(help="Seconds between cycles (default: SIGNAL_CATALOG_WATCH_INTERVAL_S)."),
    ] = None,
    cycles: Annotated[
        int | None, typer.Option(help="Stop after N cycles (default: run forever).")
    ] = None,
    verbose: VerboseOption = False,
) -> None:
    """Register new partitions of `register`-mode tables every interval (Ctrl-C stops)."""
    settings = _setup(verbose)
    tables = [t for t in _tables(table) if settings.mode_of(t.name) is PartitionMode.REGISTER]
    if not tables:
        raise _fail("no table is in `register` mode; nothing to watch", EXIT_CONFIG)
    every = interval if interval is not None else settings.watch_interval_s

    def report(cycle: int, reports: list[TableReport]) -> None:
        added = {r.table: r.partitions_added for r in reports if r.partitions_added}
        detail = ", ".join(f"{t} +{n}" for t, n in added.items()) or "no new partitions"
        out.print(f"cycle {cycle}: {detail}", highlight=False)

    try:
        done = watch(
            catalog_from(settings),
            lake_from(settings),
            tables,
            interval_s=every,
            cycles=cycles,
            on_cycle=report,
        )
    except KeyboardInterrupt:
        out.print("stopped")
        return
    out.print(f"watched {len(tables)} table(s) for {done} cycle(s)")


@crawlers_app.command("create")
@expected_failures
def crawlers_create(table: TablesOption = None, verbose: VerboseOption = False) -> None:
    """Create (or update) one crawler per table, e.g. crawler_status_count."""
    settings = _setup(verbose)
    catalog = catalog_from(settings)
    catalog.require_database()
    reports = create_crawlers(
        catalog, _tables(table), role=settings.crawler_role, prefix=settings.crawler_prefix
    )
    summary = Table(title="crawlers")
    summary.add_column("crawler")
    summary.add_column("action")
    for r in reports:
        summary.add_row(r.name, r.action)
    out.print(summary)


def _crawler_table(reports: list[CrawlerReport]) -> Table:
    summary = Table(title="crawlers")
    summary.add_column("crawler", no_wrap=True)
    for column in ("action", "state", "last crawl", "catalog changes"):
        summary.add_column(column)
    for r in reports:
        summary.add_row(r.name, r.action, r.state, r.last_crawl, r.changes)
    return summary


@crawlers_app.command("start")
@expected_failures
def crawlers_start(
    table: TablesOption = None,
    wait: Annotated[bool, typer.Option(help="Wait until the crawlers finish.")] = True,
    timeout: Annotated[
        float | None,
        typer.Option(help="Seconds to wait (default: SIGNAL_CATALOG_CRAWLER_TIMEOUT_S)."),
    ] = None,
    verbose: VerboseOption = False,
) -> None:
    """Start the crawlers, wait with progress and report what they changed."""
    settings = _setup(verbose)
    catalog = catalog_from(settings)
    catalog.require_database()
    with err.status("starting crawlers") as status:

        def show(states: dict[str, str]) -> None:
            running = sum(s != "READY" for s in states.values())
            status.update(f"{running}/{len(states)} crawler(s) still running")

        reports = start_crawlers(
            catalog,
            _tables(table),
            prefix=settings.crawler_prefix,
            wait=wait,
            timeout_s=timeout if timeout is not None else settings.crawler_timeout_s,
            poll_s=settings.crawler_poll_s,
            on_poll=show,
        )
    out.print(_crawler_table(reports))
    failed = [r.name for r in reports if r.last_crawl in ("FAILED", "CANCELLED")]
    if failed:
        raise _fail(f"crawl(s) failed: {', '.join(failed)}", EXIT_DISAGREEMENT)


@crawlers_app.command("status")
@expected_failures
def crawlers_status(table: TablesOption = None, verbose: VerboseOption = False) -> None:
    """Show each crawler's state and last crawl."""
    settings = _setup(verbose)
    catalog = catalog_from(settings)
    reports = crawler_status(catalog, _tables(table), prefix=settings.crawler_prefix)
    out.print(_crawler_table(reports))
    missing = [r.name for r in reports if r.action == "missing"]
    if missing:
        raise _fail(
            f"missing crawler(s): {', '.join(missing)} — run `signal-catalog crawlers create`",
            EXIT_DISAGREEMENT,
        )


@app.command("drift")
@expected_failures
def drift_command(
    table: TablesOption = None,
    sample: Annotated[
        int | None,
        typer.Option(
            help="Parquet files read per table (default: SIGNAL_CATALOG_DRIFT_SAMPLE_FILES)."
        ),
    ] = None,
    verbose: VerboseOption = False,
) -> None:
    """Compare Parquet footers in the lake, the catalog and libs/common; exit 1 on drift."""
    settings = _setup(verbose)
    tables = _tables(table)
    findings, files_read = drift(
        catalog_from(settings),
        lake_from(settings),
        tables,
        sample_files=sample or settings.drift_sample_files,
    )
    summary = Table(title="schema drift: lake files vs catalog vs libs/common")
    summary.add_column("table", no_wrap=True)
    for column in ("files read", "findings"):
        summary.add_column(column)
    for t in tables:
        n = sum(f.table == t.name for f in findings)
        summary.add_row(t.name, str(files_read[t.name]), f"[red]{n}[/]" if n else "0")
    out.print(summary)
    for f in findings:
        out.print(f"{f.table}: {f.source}: {f.detail}", highlight=False)
    if findings:
        raise _fail(f"{len(findings)} disagreement(s) found", EXIT_DISAGREEMENT)
    out.print("no drift")


@app.command("validate")
@expected_failures
def validate_command(table: TablesOption = None, verbose: VerboseOption = False) -> None:
    """Run each table's smoke query (SELECT * FROM <table> LIMIT 10) and report row counts."""
    settings = _setup(verbose)
    engine = engine_from(settings)
    failures: list[str] = []
    results = []
    for t in _tables(table):
        try:
            results += validate(catalog_from(settings), engine, [t])
        except CatalogError:
            raise
        except Exception as exc:  # a failing query is a finding, reported per table
            failures.append(f"{t.name}: {type(exc).__name__}: {str(exc).splitlines()[0]}")
    summary = Table(title=f"smoke queries ({engine.name})")
    for column in ("table", "rows", "columns"):
        summary.add_column(column)
    for r in results:
        summary.add_row(r.table, str(r.rows), str(len(r.columns)))
    out.print(summary)
    for f in failures:
        out.print(f"[red]failed[/] {f}", highlight=False)
    if failures:
        raise _fail(f"{len(failures)} smoke quer(y/ies) failed", EXIT_DISAGREEMENT)


def _compaction_summary(result: CompactionResult, *, dry_run: bool) -> Table:
    title = "compaction (dry run: nothing written or deleted)" if dry_run else "compaction"
    summary = Table(title=f"{title}, committed through sequence {result.committed_seq}")
    summary.add_column("table", no_wrap=True)
    for column in ("closed partitions", "compacted", "files before", "files after", "waiting"):
        summary.add_column(column, justify="right")
    by_table: dict[str, list[PartitionCompaction]] = {}
    for p in result.partitions:
        by_table.setdefault(p.table, []).append(p)
    for name, parts in by_table.items():
        summary.add_row(
            name,
            str(len(parts)),
            str(sum(p.plan.write is not None for p in parts)),
            str(sum(p.files_before for p in parts)),
            str(sum(p.files_after for p in parts)),
            str(sum(p.plan.pending_delete for p in parts)),
        )
    return summary


def _compact_once(
    settings: CatalogSettings,
    tables: list[LakeTable],
    *,
    grace_s: float,
    reader_grace_s: float,
    dry_run: bool,
) -> CompactionResult:
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=err,
        transient=True,
    ) as progress:
        task = progress.add_task("listing partitions", total=None)

        def candidates(n: int) -> None:
            progress.update(task, total=n, description="compacting partitions")

        def advance(report: PartitionCompaction) -> None:
            progress.update(
                task,
                advance=1,
                description=f"{report.table} {report.partition.dt} {report.partition.hour:02d}h",
            )

        return compact(
            lake_from(settings),
            tables,
            now=dt.datetime.now(dt.UTC),
            grace=dt.timedelta(seconds=grace_s),
            reader_grace=dt.timedelta(seconds=reader_grace_s),
            dry_run=dry_run,
            on_candidates=candidates,
            on_partition=advance,
        )


@app.command("compact")
@expected_failures
def compact_command(
    table: TablesOption = None,
    grace: Annotated[
        float | None,
        typer.Option(
            help="Compact hours that ended at least this many seconds ago "
            "(default: SIGNAL_CATALOG_COMPACT_GRACE_S)."
        ),
    ] = None,
    reader_grace: Annotated[
        float | None,
        typer.Option(
            help="Delete replaced files once the compacted file is this many seconds old "
            "(default: SIGNAL_CATALOG_COMPACT_READER_GRACE_S)."
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Report what would change; write nothing.")
    ] = False,
    every: Annotated[
        float | None,
        typer.Option(
            help="Repeat every this many seconds until Ctrl-C (the local stack uses 600)."
        ),
    ] = None,
    verbose: VerboseOption = False,
) -> None:
    """Merge each closed hour partition's files into one; readers never count a row twice."""
    settings = _setup(verbose)
    tables = _tables(table)
    grace_s = settings.compact_grace_s if grace is None else grace
    reader_s = settings.compact_reader_grace_s if reader_grace is None else reader_grace
    if grace_s < 0 or reader_s < 0:
        raise _fail("--grace and --reader-grace must be 0 or more seconds", EXIT_CONFIG)
    if every is not None and every <= 0:
        raise _fail("--every must be more than 0 seconds", EXIT_CONFIG)
    try:
        while True:
            started = time.monotonic()
            result = _compact_once(
                settings, tables, grace_s=grace_s, reader_grace_s=reader_s, dry_run=dry_run
            )
            out.print(_compaction_summary(result, dry_run=dry_run))
            out.print(
                f"{result.written} partition(s) compacted, {result.deleted} replaced file(s) "
                f"deleted, {result.pending_delete} waiting out the reader grace, "
                f"{result.open_partitions} partition(s) still open "
                f"({time.monotonic() - started:.1f} s)",
                highlight=False,
            )
            if every is None:
                return
            time.sleep(every)
    except KeyboardInterrupt:
        out.print("stopped")


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
