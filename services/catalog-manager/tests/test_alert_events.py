"""alert_events (#25) in the catalog: `sync` registers the alert evaluator's table, partitioned
by day and projected (Athena computes its partitions: there are none to register), so Athena
reads what the evaluator writes; the stream tables' handling does not change.

Athena's partition projection (Amazon Athena User Guide, "Partition projection with Amazon
Athena", "Supported types for partition projection"): a `date` key with a `yyyy-MM-dd` format
and range, and `storage.location.template` naming each partition's directory with `${dt}`.
Athena cannot run here: DuckDB reads the directories the template names, with Hive
partitioning, as the oracle that the template finds the evaluator's files.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from typer.testing import CliRunner

from signal_api.alerts.evaluator import SCHEMA
from signal_api.alerts.store import LocalAlertStore
from signal_catalog.cli import app
from signal_catalog.core.drift import arrow_columns, catalog_findings, file_findings
from signal_catalog.core.partitions import event_partitions, object_partition
from signal_catalog.core.plan import Action
from signal_catalog.core.tables import CATALOG_TABLES, projection_parameters, table_input
from signal_catalog.operations.sync import sync
from signal_catalog.settings import CatalogSettings, PartitionMode
from signal_catalog.wiring import catalog_from, lake_from
from signal_common.lake import ALERT_EVENTS, ALL_TABLES, TABLES_BY_NAME, alert_events_file

ROOT = "s3://signal-lake/prod"
EVALUATED_AT = dt.datetime(2026, 11, 23, 6, 1, tzinfo=dt.UTC)


def test_alert_events_is_catalogued_beside_the_stream_tables_not_among_them() -> None:
    assert (*ALL_TABLES, ALERT_EVENTS) == CATALOG_TABLES
    assert "alert_events" not in TABLES_BY_NAME  # compaction, watch, the Lambda never see it


def test_projection_of_a_day_partitioned_table_has_no_hour() -> None:
    assert projection_parameters(ALERT_EVENTS, ROOT, "2026-01-01,NOW") == {
        "projection.enabled": "true",
        "projection.dt.type": "date",
        "projection.dt.range": "2026-01-01,NOW",
        "projection.dt.format": "yyyy-MM-dd",
        "storage.location.template": "s3://signal-lake/prod/alert_events/dt=${dt}",
    }
    got = table_input(ALERT_EVENTS, ROOT)
    assert [(c["Name"], c["Type"]) for c in got["PartitionKeys"]] == [("dt", "string")]
    assert [c["Name"] for c in got["StorageDescriptor"]["Columns"]][:3] == [
        "evaluated_at",
        "kind",
        "alert_id",
    ]
    assert got["StorageDescriptor"]["Location"] == "s3://signal-lake/prod/alert_events"


def test_an_alert_events_object_is_no_partition_for_the_lambda() -> None:
    key = f"prod/{alert_events_file(EVALUATED_AT)}"
    assert object_partition("signal-lake", key, ROOT, TABLES_BY_NAME) is None
    event = {
        "source": "aws.s3",
        "detail-type": "Object Created",
        "detail": {"bucket": {"name": "signal-lake"}, "object": {"key": key}},
    }
    assert event_partitions(event, ROOT, TABLES_BY_NAME) == ({}, 1)


def _cycle_rows() -> pa.Table:
    """One cycle as the evaluator writes it: its cycle row and one firing state."""
    blank = {name: None for name in SCHEMA.names}
    window_end = EVALUATED_AT.replace(minute=0)
    rows = [
        blank | {"evaluated_at": EVALUATED_AT, "kind": "cycle", "window_end": window_end},
        blank
        | {
            "evaluated_at": EVALUATED_AT,
            "kind": "state",
            "alert_id": "out_of_service:postal_code:10115",
            "rule": "out_of_service",
            "area_kind": "postal_code",
            "area": "10115",
            "state": "firing",
            "window_end": window_end,
            "measures": '{"events": 40}',
            "correction": False,
        },
    ]
    return pa.Table.from_pylist(rows, schema=SCHEMA)


def test_sync_projects_alert_events_by_day_and_athenas_template_finds_the_evaluators_files(
    make_settings: Callable[..., CatalogSettings],
    lake_dir: Any,
    glue: Any,
    database: str,
    partitions_of: Callable[[str], set[tuple[str, int]]],
) -> None:
    # the evaluator's own store writes a cycle into the lake the catalog syncs
    LocalAlertStore(lake_dir.uri).write(EVALUATED_AT, _cycle_rows())
    settings = make_settings(lake_root=lake_dir.uri)  # register mode: the deploy's default
    assert settings.mode_of("events") is PartitionMode.REGISTER

    def run() -> Any:
        return sync(
            catalog_from(settings),
            lake_from(settings),
            list(CATALOG_TABLES),
            modes=settings.mode_of,
            dt_range=settings.projection_dt_range,
        )

    result = run()
    by_table = {r.table: r for r in result.tables}
    report = by_table["alert_events"]
    assert (report.action, report.mode, report.partitions_added) == (
        Action.CREATE,
        PartitionMode.PROJECTION,
        0,
    )
    # the stream tables are registered as before, partition by partition
    for table in ALL_TABLES:
        assert by_table[table.name].mode is PartitionMode.REGISTER
        assert partitions_of(table.name) == lake_dir.partitions[table.name]

    got = glue.get_table(DatabaseName=database, Name="alert_events")["Table"]
    params = got["Parameters"]
    template = params["storage.location.template"]
    assert template == f"{lake_dir.uri}/alert_events/dt=${{dt}}"
    assert (params["projection.enabled"], params["projection.dt.type"]) == ("true", "date")
    assert "projection.hour.type" not in params
    assert glue.get_partitions(DatabaseName=database, TableName="alert_events")["Partitions"] == []
    assert (
        catalog_findings(ALERT_EVENTS, got, expected_location=f"{lake_dir.uri}/alert_events") == []
    )

    # the day's directory the template names holds the cycle file; its footer is the catalog's
    day_dir = Path(template.replace("${dt}", "2026-11-23").removeprefix("file://"))
    (cycle_file,) = day_dir.glob("*.parquet")
    assert cycle_file == Path(lake_dir.path) / alert_events_file(EVALUATED_AT)
    footer = pq.read_schema(cycle_file)
    assert file_findings(ALERT_EVENTS, str(cycle_file), footer) == []
    assert arrow_columns(footer) == [
        {"Name": c["Name"], "Type": c["Type"]} for c in got["StorageDescriptor"]["Columns"]
    ]
    # the oracle: a Hive-partitioned read of the template's directories, as Athena reads them
    glob = template.replace("${dt}", "*").removeprefix("file://") + "/*.parquet"
    # (dt a string, as the catalog's partition key declares it)
    rows = duckdb.sql(
        f"SELECT dt, kind, area, state FROM read_parquet('{glob}', hive_partitioning = true, "
        "hive_types_autocast = false) ORDER BY kind"
    ).fetchall()
    assert rows == [
        ("2026-11-23", "cycle", None, None),
        ("2026-11-23", "state", "10115", "firing"),
    ]

    again = {r.table: r for r in run().tables}
    assert again["alert_events"].action is Action.NONE


def test_the_cli_syncs_alert_events_and_keeps_it_out_of_compaction(
    cli_env: Callable[..., dict[str, str]], lake_dir: Any, glue: Any, database: str
) -> None:
    env = cli_env(lake_root=lake_dir.uri)
    runner = CliRunner()
    only = runner.invoke(app, ["sync", "--table", "alert_events"], env=env)
    assert only.exit_code == 0, only.output
    assert "1 table change(s), 0 partition(s) added" in only.stdout
    names = {t["Name"] for t in glue.get_tables(DatabaseName=database)["TableList"]}
    assert names == {"alert_events"}
    refused = runner.invoke(app, ["compact", "--table", "alert_events", "--dry-run"], env=env)
    assert refused.exit_code == 2
    assert "unknown table(s) ['alert_events']" in refused.output
