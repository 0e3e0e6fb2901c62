"""Fixtures: moto server (Glue, S3) via the shared plugin, and a local lake in the real layout."""

from __future__ import annotations

import datetime as dt
import random
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from glue_http import FlakyGlue, serve_flaky_glue

from signal_catalog.settings import CatalogSettings
from signal_common.lake import ALL_TABLES, TABLES_BY_NAME, LakeTable

pytest_plugins = ["signal_testing.pytest_plugin"]

# Written independently of the code under test: the Arrow type the stream processor writes for
# each Hive type of libs/common's lake layout.
ARROW_OF_HIVE: dict[str, pa.DataType] = {
    "timestamp": pa.timestamp("us", tz="UTC"),
    "bigint": pa.int64(),
    "int": pa.int32(),
    "double": pa.float64(),
    "string": pa.string(),
    "map<string,bigint>": pa.map_(pa.string(), pa.int64()),
    "boolean": pa.bool_(),
    "array<bigint>": pa.list_(pa.int64()),  # the 131-bin signal histogram (#24)
    "binary": pa.binary(),  # a device sketch's bytes (#24)
}
START = dt.datetime(2026, 11, 23, 6, 0, tzinfo=dt.UTC)


def _values(arrow_type: pa.DataType, rows: int, rng: random.Random) -> list[Any]:
    if pa.types.is_timestamp(arrow_type):
        return [START + dt.timedelta(seconds=rng.randrange(3600)) for _ in range(rows)]
    if pa.types.is_boolean(arrow_type):
        return [False] * rows
    if pa.types.is_integer(arrow_type):
        return [rng.randrange(-150, 1000) for _ in range(rows)]
    if pa.types.is_list(arrow_type):
        return [[rng.randrange(5) for _ in range(131)] for _ in range(rows)]
    if pa.types.is_binary(arrow_type):
        return [rng.randbytes(16) for _ in range(rows)]
    if pa.types.is_floating(arrow_type):
        return [rng.uniform(0, 100) for _ in range(rows)]
    if pa.types.is_map(arrow_type):
        return [
            [("missing", rng.randrange(5)), ("wrong_type", rng.randrange(5))] for _ in range(rows)
        ]
    return [f"v{rng.randrange(1000)}" for _ in range(rows)]


def table_arrow_schema(table: LakeTable) -> pa.Schema:
    """The non-partition columns of a table as the processor writes them."""
    return pa.schema([pa.field(c.name, ARROW_OF_HIVE[c.hive_type]) for c in table.columns])


@dataclass
class LocalLakeDir:
    """A lake directory written in the processor's layout, with what was written (the oracle)."""

    path: Path
    rows: dict[str, int] = field(default_factory=dict)  # rows written per table
    partitions: dict[str, set[tuple[str, int]]] = field(default_factory=dict)
    rng: random.Random = field(default_factory=lambda: random.Random(7))

    @property
    def uri(self) -> str:
        return self.path.as_uri()

    def schema_of(self, table: str) -> pa.Schema:
        """The Arrow schema the processor writes for a table."""
        return table_arrow_schema(TABLES_BY_NAME[table])

    def write(
        self,
        table: str,
        dt_value: str,
        hour: int,
        *,
        rows: int = 3,
        batch: int = 0,
        n: int = 0,
        schema: pa.Schema | None = None,
    ) -> Path:
        """Write one Parquet file `part-<batch>-<n>.snappy.parquet` into a partition."""
        schema = schema or table_arrow_schema(TABLES_BY_NAME[table])
        data = {f.name: pa.array(_values(f.type, rows, self.rng), f.type) for f in schema}
        directory = self.path / table / f"dt={dt_value}" / f"hour={hour}"
        directory.mkdir(parents=True, exist_ok=True)
        target = directory / f"part-{batch}-{n}.snappy.parquet"
        pq.write_table(pa.table(data, schema=schema), target, compression="snappy")
        self.rows[table] = self.rows.get(table, 0) + rows
        self.partitions.setdefault(table, set()).add((dt_value, hour))
        return target


@pytest.fixture
def lake_dir(tmp_path: Path) -> LocalLakeDir:
    """A local lake: every table has 3 partitions (two days), one with two files."""
    lake = LocalLakeDir(tmp_path / "lake")
    for i, table in enumerate(ALL_TABLES):
        lake.write(table.name, "2026-11-22", 23, rows=2 + i)
        lake.write(table.name, "2026-11-23", 6, rows=4, batch=1)
        lake.write(table.name, "2026-11-23", 6, rows=5, batch=2, n=1)
        lake.write(table.name, "2026-11-23", 7, rows=8 + i, batch=3)
    # Noise a real writer leaves behind, never a partition:
    (lake.path / "events" / "_spark_metadata").mkdir()
    (lake.path / "events" / "dt=2026-11-23" / "hour=8").mkdir()  # empty: not yet written
    (lake.path / "events" / "dt=2026-11-23" / "hour=7" / "_SUCCESS").touch()
    return lake


@pytest.fixture
def database() -> str:
    """A fresh Glue database name per test (the moto server is shared by the session)."""
    return f"test_{uuid.uuid4().hex[:10]}"


@pytest.fixture
def make_settings(moto_endpoint_url: str, database: str) -> Callable[..., CatalogSettings]:
    """Settings pointing at moto server; keyword overrides for each test."""

    def build(**overrides: Any) -> CatalogSettings:
        values: dict[str, Any] = {
            "glue_endpoint_url": moto_endpoint_url,
            "s3_endpoint_url": moto_endpoint_url,
            "athena_endpoint_url": moto_endpoint_url,
            "glue_database": database,
            "aws_region": "us-east-1",
            "crawler_poll_s": 0.01,
            "backoff_base_s": 0.01,
            **overrides,
        }
        return CatalogSettings(**values)

    return build


@pytest.fixture
def cli_env(moto_endpoint_url: str, database: str) -> Callable[..., dict[str, str]]:
    """Environment for CLI runs against moto server."""

    def build(**overrides: str) -> dict[str, str]:
        env = {
            "SIGNAL_CATALOG_GLUE_ENDPOINT_URL": moto_endpoint_url,
            "SIGNAL_CATALOG_S3_ENDPOINT_URL": moto_endpoint_url,
            "SIGNAL_CATALOG_GLUE_DATABASE": database,
            "SIGNAL_CATALOG_AWS_REGION": "us-east-1",
            "SIGNAL_CATALOG_CRAWLER_POLL_S": "0.01",
            "SIGNAL_CATALOG_LOG_JSON": "false",
            "COLUMNS": "200",
        }
        env.update({f"SIGNAL_CATALOG_{k.upper()}": v for k, v in overrides.items()})
        return env

    return build


@pytest.fixture
def glue(moto_endpoint_url: str) -> Any:
    """A plain boto3 Glue client on moto server, for assertions."""
    return boto3.client("glue", endpoint_url=moto_endpoint_url, region_name="us-east-1")


def catalog_partitions(glue: Any, database: str, table: str) -> set[tuple[str, int]]:
    """(dt, hour) of every partition Glue has for a table."""
    found: set[tuple[str, int]] = set()
    for page in glue.get_paginator("get_partitions").paginate(
        DatabaseName=database, TableName=table
    ):
        found |= {(p["Values"][0], int(p["Values"][1])) for p in page["Partitions"]}
    return found


@pytest.fixture
def partitions_of(glue: Any, database: str) -> Callable[[str], set[tuple[str, int]]]:
    """Partitions of a table in the test's database."""
    return lambda table: catalog_partitions(glue, database, table)


@pytest.fixture
def flaky_glue(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[FlakyGlue, str]]:
    """A Glue endpoint on 127.0.0.1 answering with the failures a test queues, then success."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_EC2_METADATA_DISABLED": "true",
    }.items():
        monkeypatch.setenv(name, value)
    with serve_flaky_glue() as served:
        yield served
