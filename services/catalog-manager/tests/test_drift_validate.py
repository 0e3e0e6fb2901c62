"""drift (lake footers vs catalog vs libs/common) and validate (smoke queries through DuckDB)."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable
from typing import Any

import boto3
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from signal_catalog.adapters.query import AthenaSmokeEngine, DuckDBSmokeEngine
from signal_catalog.errors import ConfigurationError, DatabaseMissingError, TableMissingError
from signal_catalog.operations.checks import drift, validate
from signal_catalog.operations.sync import sync
from signal_catalog.settings import CatalogSettings
from signal_catalog.wiring import catalog_from, engine_from, lake_from
from signal_common.lake import ALL_TABLES, STATUS_COUNT, TABLES_BY_NAME


def synced(settings: CatalogSettings) -> None:
    sync(
        catalog_from(settings),
        lake_from(settings),
        list(ALL_TABLES),
        modes=settings.mode_of,
        dt_range=settings.projection_dt_range,
    )


def run_drift(settings: CatalogSettings, sample: int = 5) -> list[Any]:
    findings, _ = drift(
        catalog_from(settings),
        lake_from(settings),
        list(ALL_TABLES),
        sample_files=sample,
    )
    return findings


def test_no_drift_when_lake_catalog_and_code_agree(
    make_settings: Callable[..., CatalogSettings], lake_dir: Any
) -> None:
    settings = make_settings(lake_root=lake_dir.uri)
    synced(settings)
    findings, files_read = drift(
        catalog_from(settings),
        lake_from(settings),
        list(ALL_TABLES),
        sample_files=3,
    )
    assert findings == []
    assert files_read == {t.name: 3 for t in ALL_TABLES}  # 4 files each, sample of 3


def test_drift_detects_a_file_with_an_extra_column(
    make_settings: Callable[..., CatalogSettings], lake_dir: Any
) -> None:
    settings = make_settings(lake_root=lake_dir.uri)
    synced(settings)
    schema = lake_dir.schema_of("status_count").append(pa.field("rogue", pa.string()))
    dropped = lake_dir.write("status_count", "2026-11-23", 9, schema=schema)
    findings = run_drift(settings)
    assert [(f.table, f.source, f.detail) for f in findings] == [
        ("status_count", f"file {dropped}", "extra column rogue")
    ]


def test_drift_detects_a_file_with_a_changed_column_type(
    make_settings: Callable[..., CatalogSettings], lake_dir: Any
) -> None:
    settings = make_settings(lake_root=lake_dir.uri)
    synced(settings)
    base = lake_dir.schema_of("gps_precision_by_provider")
    index = base.get_field_index("precision_sum")
    schema = base.set(index, pa.field("precision_sum", pa.string()))
    dropped = lake_dir.write("gps_precision_by_provider", "2026-11-24", 0, schema=schema)
    findings = run_drift(settings)
    assert [(f.table, f.source, f.detail) for f in findings] == [
        (
            "gps_precision_by_provider",
            f"file {dropped}",
            "column precision_sum is string in the file, double in code",
        )
    ]


def test_drift_detects_catalog_disagreeing_with_code(
    make_settings: Callable[..., CatalogSettings], lake_dir: Any, glue: Any, database: str
) -> None:
    settings = make_settings(lake_root=lake_dir.uri)
    synced(settings)
    glue.delete_table(DatabaseName=database, Name="quarantine")
    table = glue.get_table(DatabaseName=database, Name="status_count")["Table"]
    sd = table["StorageDescriptor"]
    sd["Columns"] = [c for c in sd["Columns"] if c["Name"] != "batch_id"]
    glue.update_table(
        DatabaseName=database,
        TableInput={
            k: table[k] for k in ("Name", "Description", "TableType", "Parameters", "PartitionKeys")
        }
        | {"StorageDescriptor": sd},
    )
    details = {(f.table, f.source, f.detail) for f in run_drift(settings)}
    assert details == {
        ("quarantine", "catalog", "table is not in the catalog"),
        ("status_count", "catalog", "+ batch_id (new column)"),
    }


def test_drift_reads_s3_footers(
    make_settings: Callable[..., CatalogSettings], lake_dir: Any, s3: Any, bucket: str
) -> None:
    schema = lake_dir.schema_of("status_count").append(pa.field("rogue", pa.int64()))
    dropped = lake_dir.write("status_count", "2026-11-23", 9, schema=schema)
    for path in lake_dir.path.rglob("*.parquet"):
        s3.upload_file(str(path), bucket, f"lake/{path.relative_to(lake_dir.path).as_posix()}")
    settings = make_settings(lake_root=f"s3://{bucket}/lake")
    synced(settings)
    key = dropped.relative_to(lake_dir.path).as_posix()
    assert [(f.table, f.source, f.detail) for f in run_drift(settings)] == [
        ("status_count", f"file s3://{bucket}/lake/{key}", "extra column rogue")
    ]


def test_drift_needs_the_database(
    make_settings: Callable[..., CatalogSettings], lake_dir: Any
) -> None:
    with pytest.raises(DatabaseMissingError) as caught:
        run_drift(make_settings(lake_root=lake_dir.uri))
    assert "signal-catalog sync" in caught.value.one_line()


def test_validate_smoke_queries_return_what_the_lake_holds(
    make_settings: Callable[..., CatalogSettings], lake_dir: Any
) -> None:
    # One table with fewer than 10 rows, one with none: LIMIT 10 must show the difference.
    small = make_settings(lake_root=lake_dir.uri)
    synced(small)
    lake_dir.write("pipeline_batches", "2026-11-24", 1, rows=1)
    results = validate(catalog_from(small), DuckDBSmokeEngine(), list(ALL_TABLES))
    for result in results:
        # Oracle: pyarrow's own reading of the table directory.
        expected = ds.dataset(
            lake_dir.path / result.table, format="parquet", partitioning="hive"
        ).count_rows()
        assert result.rows == min(10, expected)
        assert set(result.columns) == {*TABLES_BY_NAME[result.table].column_names, "dt", "hour"}


def test_validate_reports_small_and_empty_tables(
    make_settings: Callable[..., CatalogSettings], tmp_path: Any
) -> None:
    lake = tmp_path / "lake2"
    lake.mkdir()

    rows = pa.table(
        {
            "window_start": pa.array([0, 1, 2], pa.timestamp("us", tz="UTC")),
            "window_end": pa.array([60, 61, 62], pa.timestamp("us", tz="UTC")),
            "postal_code": ["1000", "2000", "3000"],
            "status": ["IN_SERVICE"] * 3,
            "event_count": pa.array([1, 2, 3], pa.int64()),
            "batch_id": pa.array([0, 0, 0], pa.int64()),
        }
    )
    target = lake / "status_count" / "dt=2026-11-23" / "hour=7"
    target.mkdir(parents=True)
    pq.write_table(rows, target / "part-0-0.snappy.parquet", compression="snappy")
    settings = make_settings(lake_root=lake.as_uri())
    synced(settings)
    results = {
        r.table: r.rows
        for r in validate(
            catalog_from(settings), DuckDBSmokeEngine(), [STATUS_COUNT, TABLES_BY_NAME["events"]]
        )
    }
    assert results == {"status_count": 3, "events": 0}


def test_validate_needs_the_tables(
    make_settings: Callable[..., CatalogSettings], lake_dir: Any, glue: Any, database: str
) -> None:
    settings = make_settings(lake_root=lake_dir.uri)
    glue.create_database(DatabaseInput={"Name": database})
    with pytest.raises(TableMissingError):
        validate(catalog_from(settings), DuckDBSmokeEngine(), [STATUS_COUNT])


def test_athena_engine_sends_the_smoke_query_to_athena(
    make_settings: Callable[..., CatalogSettings], moto_endpoint_url: str, s3: Any, bucket: str
) -> None:
    # moto's Athena runs no SQL: it returns rows queued through its API. So this checks what the
    # adapter sends (query, workgroup, results location, database) and how it reads the answer.
    def cell(value: str) -> dict[str, str]:
        return {"VarCharValue": value}

    def column(name: str, kind: str) -> dict[str, Any]:
        return {
            "Name": name,
            "Label": name,
            "Type": kind,
            "Precision": 0,
            "Scale": 0,
            "Nullable": "NULLABLE",
        }

    queued = {
        "account_id": "123456789012",
        "region": "us-east-1",
        "results": [
            {
                "rows": [
                    {"Data": [cell("postal_code"), cell("event_count")]},
                    {"Data": [cell("1000"), cell("3")]},
                    {"Data": [cell("2000"), cell("4")]},
                ],
                "column_info": [column("postal_code", "varchar"), column("event_count", "bigint")],
            }
        ],
    }
    request = urllib.request.Request(
        f"{moto_endpoint_url}/moto-api/static/athena/query-results",
        data=json.dumps(queued).encode(),
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()
    settings = make_settings(
        lake_root=f"s3://{bucket}/lake",
        athena_output_location=f"s3://{bucket}/athena-results/",
        athena_workgroup="primary",
    )
    engine = engine_from(settings)
    assert isinstance(engine, AthenaSmokeEngine)
    result = engine.smoke("status_count", f"s3://{bucket}/lake/status_count")
    assert (result.rows, result.columns) == (2, ("postal_code", "event_count"))

    athena = boto3.client("athena", endpoint_url=moto_endpoint_url, region_name="us-east-1")
    executions = [
        athena.get_query_execution(QueryExecutionId=i)["QueryExecution"]
        for i in athena.list_query_executions()["QueryExecutionIds"]
    ]
    sent = [e for e in executions if e["Query"] == "SELECT * FROM status_count LIMIT 10"]
    assert len(sent) == 1
    assert sent[0]["ResultConfiguration"]["OutputLocation"].startswith(
        f"s3://{bucket}/athena-results/"
    )
    assert sent[0]["QueryExecutionContext"]["Database"] == settings.glue_database
    assert sent[0]["WorkGroup"] == "primary"


def test_athena_engine_needs_a_results_location(
    make_settings: Callable[..., CatalogSettings],
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        engine_from(make_settings(lake_root="s3://b/lake"))
    assert "SIGNAL_CATALOG_ATHENA_OUTPUT_LOCATION" in caught.value.one_line()
