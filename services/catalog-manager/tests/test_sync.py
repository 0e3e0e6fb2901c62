"""sync / watch / event against moto server's Glue (and S3), with a local lake directory."""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Callable
from typing import Any

import pytest

from signal_catalog import lambda_handler
from signal_catalog.adapters.lake import S3Lake
from signal_catalog.core.partitions import Partition, partition_input
from signal_catalog.core.plan import Action
from signal_catalog.core.views import view_name
from signal_catalog.errors import DatabaseMissingError, LakePathMissingError, TableMissingError
from signal_catalog.operations.sync import SyncResult, TableReport, handle_s3_event, sync, watch
from signal_catalog.settings import CatalogSettings, PartitionMode
from signal_catalog.wiring import catalog_from, lake_from, s3_client
from signal_common.lake import (
    ALL_TABLES,
    KPI_TABLES,
    STATUS_COUNT,
    TABLES_BY_NAME,
    Column,
    table_uri,
)

PartitionsOf = Callable[[str], set[tuple[str, int]]]


def run_sync(
    settings: CatalogSettings, *, tables: Any = ALL_TABLES, force: bool = False
) -> SyncResult:
    return sync(
        catalog_from(settings),
        lake_from(settings),
        list(tables),
        modes=settings.mode_of,
        dt_range=settings.projection_dt_range,
        force=force,
    )


def count_calls(client: Any, operation: str) -> list[int]:
    """Record the PartitionInputList size (or 1) of each call of an operation on a real client."""
    sizes: list[int] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        sizes.append(len(params.get("PartitionInputList", [None])))

    client.meta.events.register(f"provide-client-params.glue.{operation}", record)
    return sizes


def test_sync_registers_every_table_and_partition_of_the_lake(
    make_settings: Callable[..., CatalogSettings],
    lake_dir: Any,
    glue: Any,
    database: str,
    partitions_of: PartitionsOf,
) -> None:
    settings = make_settings(lake_root=lake_dir.uri)
    result = run_sync(settings)

    assert result.database_created
    assert [r.action for r in result.tables] == [Action.CREATE] * len(ALL_TABLES)
    names = {t["Name"] for t in glue.get_tables(DatabaseName=database)["TableList"]}
    views = {view_name(t) for t in KPI_TABLES}
    assert "coverage_by_h3_per_hour" in views  # an hourly table's view says so
    assert names == {t.name for t in ALL_TABLES} | views
    assert result.views == dict.fromkeys(sorted(views), Action.CREATE)
    view = glue.get_table(DatabaseName=database, Name="status_count_per_minute")["Table"]
    assert (view["TableType"], view["Parameters"]["presto_view"]) == ("VIRTUAL_VIEW", "true")
    encoded = view["ViewOriginalText"].removeprefix("/* Presto View: ").removesuffix(" */")
    presto = json.loads(base64.b64decode(encoded))
    assert (presto["catalog"], presto["schema"]) == ("awsdatacatalog", database)
    assert "FROM (SELECT * FROM status_count OFFSET 0) AS scoped" in presto["originalSql"]
    assert [(c["name"], c["type"]) for c in presto["columns"]] == [
        ("window_start", "timestamp"),
        ("window_end", "timestamp"),
        ("postal_code", "varchar"),
        ("status", "varchar"),
        ("event_count", "bigint"),
        ("dt", "varchar"),
        ("hour", "integer"),
    ]
    for table in ALL_TABLES:
        got = glue.get_table(DatabaseName=database, Name=table.name)["Table"]
        assert got["StorageDescriptor"]["Location"] == table_uri(lake_dir.uri, table)
        assert [c["Name"] for c in got["StorageDescriptor"]["Columns"]] == list(table.column_names)
        # the oracle: what the fixture wrote (noise dirs and empty hour=8 are not partitions)
        assert partitions_of(table.name) == lake_dir.partitions[table.name]
    assert result.partitions_added == sum(len(p) for p in lake_dir.partitions.values())
    assert {r.table: r.partitions_present for r in result.tables} == {
        name: len(p) for name, p in lake_dir.partitions.items()
    }


def test_second_sync_changes_nothing(
    make_settings: Callable[..., CatalogSettings], lake_dir: Any, glue: Any, database: str
) -> None:
    settings = make_settings(lake_root=lake_dir.uri)
    run_sync(settings)

    def catalog_state() -> dict[str, Any]:
        state = {}
        for t in ALL_TABLES:
            state[t.name] = (
                glue.get_table(DatabaseName=database, Name=t.name)["Table"],
                sorted(
                    (p["Values"], p["StorageDescriptor"]["Location"])
                    for p in glue.get_partitions(DatabaseName=database, TableName=t.name)[
                        "Partitions"
                    ]
                ),
            )
        return state

    before = catalog_state()
    catalog = catalog_from(settings)
    writes = [
        count_calls(catalog.client, op)
        for op in ("CreateTable", "UpdateTable", "BatchCreatePartition", "CreateDatabase")
    ]
    second = sync(
        catalog,
        lake_from(settings),
        list(ALL_TABLES),
        modes=settings.mode_of,
        dt_range=settings.projection_dt_range,
    )
    assert not second.database_created
    assert all(r.action is Action.NONE and r.partitions_added == 0 for r in second.tables)
    assert set(second.views.values()) == {Action.NONE}
    assert writes == [[], [], [], []]
    assert catalog_state() == before


def test_new_partitions_appear_after_sync_in_chunks_of_at_most_100(
    make_settings: Callable[..., CatalogSettings], lake_dir: Any, partitions_of: PartitionsOf
) -> None:
    settings = make_settings(lake_root=lake_dir.uri)
    run_sync(settings)
    # 130 new hourly partitions of one table, as the processor would write them over ~5 days
    new = set()
    for i in range(130):
        dt_value, hour = f"2026-11-{24 + i // 24:02d}", i % 24
        lake_dir.write("status_count", dt_value, hour, rows=1, batch=100 + i)
        new.add((dt_value, hour))
    catalog = catalog_from(settings)
    sizes = count_calls(catalog.client, "BatchCreatePartition")
    result = sync(
        catalog,
        lake_from(settings),
        [STATUS_COUNT],
        modes=settings.mode_of,
        dt_range=settings.projection_dt_range,
    )
    assert result.tables[0].partitions_added == 130
    assert sizes == [100, 30]
    assert partitions_of("status_count") == lake_dir.partitions["status_count"]
    assert new <= partitions_of("status_count")


def test_already_registered_partitions_count_as_success(
    make_settings: Callable[..., CatalogSettings], lake_dir: Any, partitions_of: PartitionsOf
) -> None:
    settings = make_settings(lake_root=lake_dir.uri)
    run_sync(settings, tables=[STATUS_COUNT])
    lake_dir.write("status_count", "2026-11-23", 9, rows=2)
    catalog = catalog_from(settings)
    # Someone else (the Lambda, a crawler) registered the same partitions in the meantime.
    inputs = [
        partition_input(STATUS_COUNT, settings.lake_root, Partition(d, h))
        for d, h in sorted(lake_dir.partitions["status_count"])
    ]
    result = catalog.batch_create_partitions("status_count", inputs)
    assert (result.created, result.already_present) == (1, 3)
    assert partitions_of("status_count") == lake_dir.partitions["status_count"]


def test_additive_change_updates_and_incompatible_change_is_refused_unless_forced(
    make_settings: Callable[..., CatalogSettings], lake_dir: Any, glue: Any, database: str
) -> None:
    settings = make_settings(lake_root=lake_dir.uri)
    run_sync(settings, tables=[STATUS_COUNT])
    added = dataclasses.replace(
        STATUS_COUNT, columns=(*STATUS_COUNT.columns, Column("cell_count", "bigint", "Cells seen."))
    )
    result = run_sync(settings, tables=[added])
    assert result.tables[0].action is Action.UPDATE
    assert "+ cell_count (new column)" in result.tables[0].notes
    columns = glue.get_table(DatabaseName=database, Name="status_count")["Table"][
        "StorageDescriptor"
    ]["Columns"]
    assert columns[-1] == {"Name": "cell_count", "Type": "bigint", "Comment": "Cells seen."}

    retyped = dataclasses.replace(
        added,
        columns=tuple(
            Column(c.name, "int", c.description) if c.name == "event_count" else c
            for c in added.columns
        ),
    )
    refused = run_sync(settings, tables=[retyped])
    assert refused.tables[0].action is Action.REFUSE
    assert refused.tables[0].notes == ["~ event_count: bigint -> int (type changed)"]
    stored = glue.get_table(DatabaseName=database, Name="status_count")["Table"]
    assert {c["Name"]: c["Type"] for c in stored["StorageDescriptor"]["Columns"]}[
        "event_count"
    ] == "bigint"

    # Back to libs/common's definition drops cell_count: a removal, refused too.
    assert run_sync(settings, tables=[STATUS_COUNT]).tables[0].action is Action.REFUSE
    forced = run_sync(settings, tables=[retyped], force=True)
    assert forced.tables[0].action is Action.UPDATE
    stored = glue.get_table(DatabaseName=database, Name="status_count")["Table"]
    assert {c["Name"]: c["Type"] for c in stored["StorageDescriptor"]["Columns"]}[
        "event_count"
    ] == "int"


def test_table_located_elsewhere_is_refused(
    make_settings: Callable[..., CatalogSettings], lake_dir: Any, glue: Any, database: str
) -> None:
    settings = make_settings(lake_root=lake_dir.uri)
    run_sync(settings, tables=[STATUS_COUNT])
    table = glue.get_table(DatabaseName=database, Name="status_count")["Table"]
    sd = dict(table["StorageDescriptor"], Location="s3://someone-elses-bucket/status_count")
    glue.update_table(
        DatabaseName=database,
        TableInput={
            k: table[k] for k in ("Name", "Description", "TableType", "Parameters", "PartitionKeys")
        }
        | {"StorageDescriptor": sd},
    )
    result = run_sync(settings, tables=[STATUS_COUNT])
    assert result.tables[0].action is Action.REFUSE
    assert any("someone-elses-bucket" in n for n in result.tables[0].notes)
    assert result.tables[0].partitions_added == 0


def test_projection_mode_sets_athena_properties_and_registers_nothing(
    make_settings: Callable[..., CatalogSettings],
    lake_dir: Any,
    glue: Any,
    database: str,
    partitions_of: PartitionsOf,
) -> None:
    settings = make_settings(lake_root=lake_dir.uri, table_modes={"events": "projection"})
    result = run_sync(settings, tables=[TABLES_BY_NAME["events"], STATUS_COUNT])
    assert [r.mode for r in result.tables] == [PartitionMode.PROJECTION, PartitionMode.REGISTER]
    params = glue.get_table(DatabaseName=database, Name="events")["Table"]["Parameters"]
    assert {
        k: v for k, v in params.items() if k.startswith("projection.") or k.startswith("storage.")
    } == {
        "projection.enabled": "true",
        "projection.dt.type": "date",
        "projection.dt.range": "2020-01-01,NOW",
        "projection.dt.format": "yyyy-MM-dd",
        "projection.hour.type": "integer",
        "projection.hour.range": "0,23",
        "storage.location.template": f"{lake_dir.uri}/events/dt=${{dt}}/hour=${{hour}}",
    }
    assert partitions_of("events") == set()
    assert partitions_of("status_count") == lake_dir.partitions["status_count"]

    # Switching back to register removes the projection properties and registers partitions.
    back = run_sync(make_settings(lake_root=lake_dir.uri), tables=[TABLES_BY_NAME["events"]])
    assert back.tables[0].action is Action.UPDATE
    params = glue.get_table(DatabaseName=database, Name="events")["Table"]["Parameters"]
    assert not [k for k in params if k.startswith("projection.")]
    assert partitions_of("events") == lake_dir.partitions["events"]


def test_missing_lake_path_is_a_named_error(
    make_settings: Callable[..., CatalogSettings], tmp_path: Any
) -> None:
    settings = make_settings(lake_root=(tmp_path / "nope").as_uri())
    with pytest.raises(LakePathMissingError) as caught:
        run_sync(settings)
    assert "nope" in caught.value.one_line()


def test_watch_picks_up_a_partition_within_its_interval(
    make_settings: Callable[..., CatalogSettings], lake_dir: Any, partitions_of: PartitionsOf
) -> None:
    settings = make_settings(lake_root=lake_dir.uri)
    run_sync(settings, tables=[STATUS_COUNT])
    seen: list[tuple[int, int]] = []
    slept: list[float] = []

    def writer_lands_a_file_during_the_interval(seconds: float) -> None:
        slept.append(seconds)
        if len(slept) == 1:
            lake_dir.write("status_count", "2026-11-23", 10, rows=2, batch=9)

    def after_cycle(cycle: int, reports: list[TableReport]) -> None:
        seen.append((cycle, reports[0].partitions_added))
        if cycle == 2:
            assert ("2026-11-23", 10) in partitions_of("status_count")

    cycles = watch(
        catalog_from(settings),
        lake_from(settings),
        [STATUS_COUNT],
        interval_s=2.5,
        cycles=3,
        sleep=writer_lands_a_file_during_the_interval,
        on_cycle=after_cycle,
    )
    assert cycles == 3
    assert seen == [(1, 0), (2, 1), (3, 0)]  # found in the first cycle after it landed
    assert slept == [2.5, 2.5]


def test_watch_requires_the_database(
    make_settings: Callable[..., CatalogSettings], lake_dir: Any
) -> None:
    settings = make_settings(lake_root=lake_dir.uri)
    with pytest.raises(DatabaseMissingError):
        watch(
            catalog_from(settings),
            lake_from(settings),
            [STATUS_COUNT],
            interval_s=1,
            cycles=1,
            sleep=lambda _: None,
        )


def test_s3_lake_partitions_are_discovered_with_delimiter_listing(
    make_settings: Callable[..., CatalogSettings],
    s3: Any,
    bucket: str,
    lake_dir: Any,
    partitions_of: PartitionsOf,
) -> None:
    # Upload the fixture lake under a prefix, plus noise that is not a partition.
    for path in lake_dir.path.rglob("*"):
        if path.is_file():
            s3.upload_file(
                str(path), bucket, f"lake/v1/{path.relative_to(lake_dir.path).as_posix()}"
            )
    s3.put_object(
        Bucket=bucket, Key="lake/v1/status_count/dt=2026-11-24/hour=1/_temporary/0", Body=b""
    )
    s3.put_object(Bucket=bucket, Key="lake/v1/status_count/dt=bad/hour=1/x.parquet", Body=b"")
    settings = make_settings(lake_root=f"s3://{bucket}/lake/v1")
    lake = lake_from(settings)
    assert isinstance(lake, S3Lake)
    assert {(p.dt, p.hour) for p in lake.partitions("status_count")} == lake_dir.partitions[
        "status_count"
    ]

    result = run_sync(settings)
    assert result.partitions_added == sum(len(p) for p in lake_dir.partitions.values())
    for table in ALL_TABLES:
        assert partitions_of(table.name) == lake_dir.partitions[table.name]


def test_missing_bucket_is_a_named_error(make_settings: Callable[..., CatalogSettings]) -> None:
    settings = make_settings(lake_root="s3://no-such-bucket-signal/lake")
    with pytest.raises(LakePathMissingError):
        run_sync(settings)


def test_lambda_registers_the_partition_of_a_sample_s3_event(
    make_settings: Callable[..., CatalogSettings],
    s3: Any,
    bucket: str,
    moto_endpoint_url: str,
    database: str,
    monkeypatch: pytest.MonkeyPatch,
    partitions_of: PartitionsOf,
    lake_dir: Any,
) -> None:
    root = f"s3://{bucket}/lake"
    settings = make_settings(lake_root=root, table_modes={"events": "projection"})
    run_sync(settings)
    key = "lake/status_count/dt=2026-11-23/hour=7/part-12-0.snappy.parquet"
    s3.upload_file(str(next((lake_dir.path / "status_count").rglob("*.parquet"))), bucket, key)
    event = {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": "us-east-1",
                "eventName": "ObjectCreated:Put",
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
                    "object": {"key": key.replace("=", "%3D"), "size": 1024},
                },
            },
            {  # projection-mode table: Athena computes its partitions, nothing to register
                "eventSource": "aws:s3",
                "eventName": "ObjectCreated:Put",
                "s3": {
                    "bucket": {"name": bucket},
                    "object": {"key": "lake/events/dt=2026-11-23/hour=7/p.parquet"},
                },
            },
        ]
    }
    for name, value in {
        "SIGNAL_CATALOG_GLUE_ENDPOINT_URL": moto_endpoint_url,
        "SIGNAL_CATALOG_GLUE_DATABASE": database,
        "SIGNAL_CATALOG_LAKE_ROOT": root,
        "SIGNAL_CATALOG_TABLE_MODES": '{"events": "projection"}',
    }.items():
        monkeypatch.setenv(name, value)

    result = lambda_handler.handler(event, None)
    assert result == {
        "registered": {"status_count": ["dt=2026-11-23/hour=7"]},
        "partitions_created": 1,
        "ignored_records": 1,
    }
    assert partitions_of("status_count") == {("2026-11-23", 7)}
    assert partitions_of("events") == set()
    # A retried delivery of the same event is harmless.
    assert lambda_handler.handler(event, None)["partitions_created"] == 0
    assert partitions_of("status_count") == {("2026-11-23", 7)}
    assert s3_client(settings).head_object(Bucket=bucket, Key=key)["ContentLength"] > 0


def test_lambda_for_a_table_not_yet_synced_fails_loudly(
    make_settings: Callable[..., CatalogSettings], glue: Any, database: str
) -> None:
    # No swallowing: the Lambda fails so S3's retry (or the DLQ) keeps the notification.
    glue.create_database(DatabaseInput={"Name": database})
    settings = make_settings(lake_root="s3://signal-lake/lake")
    event = {
        "Records": [
            {
                "eventSource": "aws:s3",
                "eventName": "ObjectCreated:Put",
                "s3": {
                    "bucket": {"name": "signal-lake"},
                    "object": {"key": "lake/events/dt=2026-11-23/hour=1/part-0-0.snappy.parquet"},
                },
            }
        ]
    }
    with pytest.raises(TableMissingError) as caught:
        handle_s3_event(
            event, catalog_from(settings), lake_root=settings.lake_root, tables=TABLES_BY_NAME
        )
    assert "signal-catalog sync" in caught.value.one_line()
