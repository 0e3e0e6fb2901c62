"""Unit tests of the pure parts: table inputs, projection, diffs, plans, partitions, drift types."""

from __future__ import annotations

import random
from dataclasses import replace

import pyarrow as pa
import pytest
from botocore.exceptions import ClientError

from signal_catalog.adapters.retry import translate, with_backoff
from signal_catalog.core.crawlers import crawler_definition, crawler_name, definition_differs
from signal_catalog.core.drift import file_findings, hive_type_of
from signal_catalog.core.partitions import (
    Partition,
    chunks,
    event_partitions,
    object_partition,
    parse_dt_dir,
    parse_hour_dir,
    partition_input,
)
from signal_catalog.core.plan import Action, plan_table
from signal_catalog.core.schema_diff import column_diff
from signal_catalog.core.tables import projection_parameters, table_input
from signal_catalog.errors import AccessDeniedError, ThrottledError
from signal_common.lake import (
    ALL_TABLES,
    KPI_TABLES,
    STATUS_COUNT,
    TABLES_BY_NAME,
    LakeTable,
    table_arrow_schema,
)

ROOT = "s3://signal-lake/prod"


def _client_error(code: str, message: str = "nope") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, "SomeOperation")


def test_table_input_is_parquet_snappy_partitioned_at_the_table_uri() -> None:
    got = table_input(STATUS_COUNT, ROOT)
    sd = got["StorageDescriptor"]
    assert got["Name"] == "status_count"
    assert got["TableType"] == "EXTERNAL_TABLE"
    assert sd["Location"] == "s3://signal-lake/prod/status_count"
    assert sd["SerdeInfo"]["SerializationLibrary"] == (
        "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
    )
    assert sd["InputFormat"] == "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
    assert got["Parameters"]["parquet.compression"] == "SNAPPY"
    assert got["Parameters"]["classification"] == "parquet"
    assert [(c["Name"], c["Type"]) for c in got["PartitionKeys"]] == [
        ("dt", "string"),
        ("hour", "int"),
    ]
    assert [(c["Name"], c["Type"]) for c in sd["Columns"]] == [
        ("window_start", "timestamp"),
        ("window_end", "timestamp"),
        ("postal_code", "string"),
        ("status", "string"),
        ("event_count", "bigint"),
        ("devices_hll", "binary"),
        ("batch_id", "bigint"),
        ("commit_seq", "bigint"),
        ("compacted", "boolean"),
    ]
    assert not any(k.startswith("projection.") for k in got["Parameters"])


_ADDED_BY_24 = {"signal_sq_sum", "signal_hist", "precision_sq_sum", "devices_hll"}


@pytest.mark.parametrize("table", KPI_TABLES, ids=lambda t: t.name)
def test_the_24_columns_are_an_additive_update_of_a_catalogued_kpi_table(table: LakeTable) -> None:
    before = replace(table, columns=tuple(c for c in table.columns if c.name not in _ADDED_BY_24))
    plan = plan_table(table_input(before, ROOT), table_input(table, ROOT))
    assert plan.action is Action.UPDATE
    assert set(plan.diff.added) == _ADDED_BY_24 & set(table.column_names)
    assert plan.diff.is_compatible
    # a file written before them is no drift: Athena reads a missing Parquet column as null
    assert file_findings(table, "file old", table_arrow_schema(before)) == []


def test_projection_properties_are_exactly_athenas_date_and_integer_projection() -> None:
    assert projection_parameters(STATUS_COUNT, ROOT, "2020-01-01,NOW") == {
        "projection.enabled": "true",
        "projection.dt.type": "date",
        "projection.dt.range": "2020-01-01,NOW",
        "projection.dt.format": "yyyy-MM-dd",
        "projection.hour.type": "integer",
        "projection.hour.range": "0,23",
        "storage.location.template": ("s3://signal-lake/prod/status_count/dt=${dt}/hour=${hour}"),
    }


def test_column_diff_separates_additions_from_incompatible_changes() -> None:
    actual = [{"Name": "a", "Type": "bigint"}, {"Name": "b", "Type": "string"}]
    added = column_diff(actual, [*actual, {"Name": "c", "Type": "double"}])
    assert added.added == ("c",)
    assert added.is_compatible
    changed = column_diff(actual, [{"Name": "a", "Type": "int"}, {"Name": "b", "Type": "string"}])
    assert changed.changed == (("a", "bigint", "int"),)
    assert not changed.is_compatible
    removed = column_diff(actual, actual[:1])
    assert removed.removed == ("b",)
    assert not removed.is_compatible
    spaced = column_diff(
        [{"Name": "m", "Type": "map<string, bigint>"}],
        [{"Name": "M", "Type": "MAP<string,bigint>"}],
    )
    assert spaced.is_empty


def test_plan_table_create_none_update_refuse() -> None:
    desired = table_input(STATUS_COUNT, ROOT)
    assert plan_table(None, desired).action is Action.CREATE
    assert plan_table(desired, desired).action is Action.NONE

    wider = table_input(
        STATUS_COUNT.__class__(
            STATUS_COUNT.name,
            STATUS_COUNT.description,
            (*STATUS_COUNT.columns, STATUS_COUNT.columns[0].__class__("extra", "double", "x")),
            STATUS_COUNT.partition_keys,
        ),
        ROOT,
    )
    assert plan_table(desired, wider).action is Action.UPDATE
    narrower_plan = plan_table(wider, desired)
    assert narrower_plan.action is Action.REFUSE
    assert "- extra (column removed)" in narrower_plan.reasons
    assert plan_table(wider, desired, force=True).action is Action.UPDATE

    elsewhere = table_input(STATUS_COUNT, "s3://other-bucket/x")
    moved = plan_table(elsewhere, desired)
    assert moved.action is Action.REFUSE
    assert moved.location_mismatch == ("s3://other-bucket/x/status_count", f"{ROOT}/status_count")


def test_plan_keeps_foreign_parameters_and_drops_stale_projection() -> None:
    projected = table_input(STATUS_COUNT, ROOT, projection_dt_range="2020-01-01,NOW")
    projected["Parameters"]["owner_team"] = "radio"
    plan = plan_table(projected, table_input(STATUS_COUNT, ROOT))
    assert plan.action is Action.UPDATE
    assert plan.table_input["Parameters"]["owner_team"] == "radio"
    assert not any(k.startswith("projection.") for k in plan.table_input["Parameters"])
    assert "storage.location.template" not in plan.table_input["Parameters"]


@pytest.mark.parametrize(
    ("name", "expected"),
    [("dt=2026-11-23", "2026-11-23"), ("dt=2026-02-30", None), ("dt=latest", None), ("x", None)],
)
def test_parse_dt_dir(name: str, expected: str | None) -> None:
    assert parse_dt_dir(name) == expected


@pytest.mark.parametrize(
    ("name", "expected"), [("hour=0", 0), ("hour=23", 23), ("hour=7/", 7), ("hour=24", None)]
)
def test_parse_hour_dir(name: str, expected: int | None) -> None:
    assert parse_hour_dir(name) == expected


def test_chunks_never_exceed_the_limit_and_keep_everything() -> None:
    items = list(range(250))
    got = list(chunks(items, 100))
    assert [len(c) for c in got] == [100, 100, 50]
    assert [x for c in got for x in c] == items


def test_partition_input_points_at_the_hive_directory() -> None:
    got = partition_input(STATUS_COUNT, ROOT, Partition("2026-11-23", 7))
    assert got["Values"] == ["2026-11-23", "7"]
    assert got["StorageDescriptor"]["Location"] == (
        "s3://signal-lake/prod/status_count/dt=2026-11-23/hour=7/"
    )


def test_object_partition_only_for_data_files_under_the_lake_root() -> None:
    key = "prod/status_count/dt=2026-11-23/hour=7/part-3-0.snappy.parquet"
    hit = object_partition("signal-lake", key, ROOT, TABLES_BY_NAME)
    assert hit is not None
    assert (hit.table, hit.partition) == ("status_count", Partition("2026-11-23", 7))
    for bucket, other in [
        ("signal-lake", "prod/status_count/dt=2026-11-23/hour=7/_SUCCESS"),
        ("signal-lake", "staging/status_count/dt=2026-11-23/hour=7/p.parquet"),
        ("other", key),
        ("signal-lake", "prod/unknown/dt=2026-11-23/hour=7/p.parquet"),
        ("signal-lake", "prod/status_count/_spark_metadata/0"),
        # the stream processor's staging folder and batch manifests are not data
        ("signal-lake", "prod/_staging/status_count/000000000001/dt=2026-11-23/hour=7/p.parquet"),
        ("signal-lake", "prod/_batches/status_count/000000000001.json"),
    ]:
        assert object_partition(bucket, other, ROOT, TABLES_BY_NAME) is None


def test_event_partitions_decode_url_encoded_keys_and_skip_other_events() -> None:
    def record(name: str, key: str) -> dict[str, object]:
        return {
            "eventSource": "aws:s3",
            "eventName": name,
            "s3": {"bucket": {"name": "signal-lake"}, "object": {"key": key}},
        }

    event = {
        "Records": [
            record(
                "ObjectCreated:Put", "prod/events/dt%3D2026-11-23/hour%3D7/part-1-0.snappy.parquet"
            ),
            record("ObjectCreated:Put", "prod/events/dt=2026-11-23/hour=7/part-1-1.snappy.parquet"),
            record(
                "ObjectCreated:CompleteMultipartUpload",
                "prod/quarantine/dt=2026-11-22/hour=23/a.parquet",
            ),
            record(
                "ObjectRemoved:Delete", "prod/events/dt=2026-11-23/hour=9/part-1-0.snappy.parquet"
            ),
        ]
    }
    found, ignored = event_partitions(event, ROOT, TABLES_BY_NAME)
    assert found == {
        "events": {Partition("2026-11-23", 7)},
        "quarantine": {Partition("2026-11-22", 23)},
    }
    assert ignored == 1


def test_event_partitions_read_eventbridge_object_created_events() -> None:
    def event(detail_type: str, key: str, bucket: str = "signal-lake") -> dict[str, object]:
        # the shape EventBridge delivers for a bucket with EventBridge notifications on
        return {
            "version": "0",
            "source": "aws.s3",
            "detail-type": detail_type,
            "detail": {"bucket": {"name": bucket}, "object": {"key": key, "size": 1024}},
        }

    found, ignored = event_partitions(
        event("Object Created", "prod/status_count/dt=2026-11-23/hour=8/part-1-2.parquet"),
        ROOT,
        TABLES_BY_NAME,
    )
    assert found == {"status_count": {Partition("2026-11-23", 8)}}
    assert ignored == 0
    for other in (
        event("Object Deleted", "prod/status_count/dt=2026-11-23/hour=8/part-1-2.parquet"),
        event("Object Created", "prod/_batches/status_count/000000000001.json"),
        event("Object Created", "prod/events/dt=2026-11-23/hour=8/p.parquet", bucket="other"),
    ):
        assert event_partitions(other, ROOT, TABLES_BY_NAME) == ({}, 1)


def test_hive_type_of_arrow_types_the_processor_writes() -> None:
    assert hive_type_of(pa.timestamp("us", tz="UTC")) == "timestamp"
    assert hive_type_of(pa.int64()) == "bigint"
    assert hive_type_of(pa.int32()) == "int"
    assert hive_type_of(pa.float64()) == "double"
    assert hive_type_of(pa.string()) == "string"
    assert hive_type_of(pa.map_(pa.string(), pa.int64())) == "map<string,bigint>"
    assert hive_type_of(pa.list_(pa.int32())) == "array<int>"


def test_file_findings_name_extra_missing_and_changed_columns() -> None:
    fields = [
        pa.field(c.name, pa.string() if c.hive_type == "string" else pa.int64())
        for c in STATUS_COUNT.columns
        if c.name != "compacted"
    ]
    fields = [f for f in fields if f.name != "batch_id"]  # missing
    fields.append(pa.field("surprise", pa.float64()))  # extra
    findings = file_findings(STATUS_COUNT, "file x", pa.schema(fields))
    details = sorted(f.detail for f in findings)
    assert details == [
        "column devices_hll is bigint in the file, binary in code",
        "column window_end is bigint in the file, timestamp in code",
        "column window_start is bigint in the file, timestamp in code",
        "extra column surprise",
        "missing column batch_id",
        "missing column compacted",
    ]


def test_seed_crawler_names_and_definitions() -> None:
    names = [crawler_name(t.name) for t in ALL_TABLES]
    assert {
        "crawler_signal_strength_by_operator",
        "crawler_gps_precision_by_provider",
        "crawler_status_count",
    } <= set(names)
    definition = crawler_definition("status_count", database="db", role="role")
    assert definition["Targets"] == {
        "CatalogTargets": [{"DatabaseName": "db", "Tables": ["status_count"]}]
    }
    assert not definition_differs(definition, definition)
    assert definition_differs({**definition, "Role": "other"}, definition)


def test_backoff_retries_concurrent_modification_with_bounded_jittered_delays() -> None:
    attempts: list[int] = []
    delays: list[float] = []

    def flaky() -> str:
        attempts.append(1)
        if len(attempts) < 4:
            raise _client_error("ConcurrentModificationException", "Update table failed")
        return "ok"

    got = with_backoff(
        flaky,
        what="x",
        attempts=6,
        base_s=0.5,
        max_s=1.5,
        sleep=delays.append,
        rng=random.Random(1),
    )
    assert got == "ok"
    assert len(attempts) == 4
    assert len(delays) == 3
    caps = [0.5, 1.0, 1.5]
    assert all(0 <= d <= cap for d, cap in zip(delays, caps, strict=True))


def test_backoff_gives_up_as_throttled_and_leaves_other_errors_to_the_caller() -> None:
    def always_conflicting() -> None:
        raise _client_error("ConcurrentModificationException")

    with pytest.raises(ThrottledError) as caught:
        with_backoff(
            always_conflicting, what="listing partitions", attempts=3, sleep=lambda _: None
        )
    assert "\n" not in caught.value.one_line()
    assert "listing partitions" in caught.value.one_line()

    # throttling reaches this loop only once botocore's own attempts are spent: not retried again
    for code in ("AccessDeniedException", "ThrottlingException"):
        calls: list[str] = []

        def fails(code: str = code, calls: list[str] = calls) -> None:
            calls.append(code)
            raise _client_error(code)

        with pytest.raises(ClientError):
            with_backoff(fails, what="x", sleep=lambda _: None)
        assert calls == [code]


def test_access_denied_becomes_one_line_with_what_to_do() -> None:
    error = translate(
        _client_error(
            "AccessDeniedException", "User is not authorized to perform glue:CreateTable"
        ),
        "creating table db.events",
    )
    assert isinstance(error, AccessDeniedError)
    line = error.one_line()
    assert "\n" not in line
    assert "glue:CreateTable" in line
    assert "creating table db.events" in line
