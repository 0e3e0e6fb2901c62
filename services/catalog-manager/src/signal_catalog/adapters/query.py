"""Query engines for `validate`: DuckDB over a local lake, Athena (pyathena) in AWS."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from signal_catalog.errors import ConfigurationError
from signal_common.lake import local_path

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def smoke_query(table: str) -> str:
    """The seed's smoke query of a table."""
    if not _IDENTIFIER.match(table):
        raise ValueError(f"not a plain table name: {table!r}")
    return f"SELECT * FROM {table} LIMIT 10"


@dataclass(frozen=True)
class SmokeResult:
    """What a smoke query returned."""

    table: str
    rows: int
    columns: tuple[str, ...]


class SmokeEngine(Protocol):
    """Runs a table's smoke query; `location` is the table's catalog location."""

    name: str

    def smoke(self, table: str, location: str) -> SmokeResult:
        """Run `SELECT * FROM <table> LIMIT 10` and report what came back."""


class DuckDBSmokeEngine:
    """DuckDB over the local lake: each table is a view over its Hive-partitioned Parquet."""

    name = "duckdb"

    def __init__(self) -> None:
        import duckdb

        self.connection = duckdb.connect(":memory:")

    def smoke(self, table: str, location: str) -> SmokeResult:
        """Define the table as a view over its catalog location, then run the smoke query."""
        directory = Path(local_path(location))
        files = list(directory.glob("dt=*/hour=*/*.parquet"))
        if not files:
            return SmokeResult(table, 0, ())
        pattern = str(directory / "dt=*" / "hour=*" / "*.parquet").replace("'", "''")
        self.connection.execute(
            f"CREATE OR REPLACE VIEW {table} AS SELECT * FROM read_parquet('{pattern}', "
            "hive_partitioning = true, union_by_name = true)"
        )
        # Fetched as Arrow: Python objects for TIMESTAMPTZ would need pytz, which is not a
        # dependency of this service.
        relation = self.connection.sql(smoke_query(table))
        # to_arrow_table in DuckDB 1.4+/2.x, fetch_arrow_table before it
        fetch = getattr(relation, "to_arrow_table", None) or relation.fetch_arrow_table
        result = fetch()
        return SmokeResult(table, result.num_rows, tuple(result.column_names))


class AthenaSmokeEngine:
    """Athena through pyathena, reading the tables of the Glue database."""

    name = "athena"

    def __init__(
        self,
        *,
        database: str,
        region: str,
        workgroup: str,
        output_location: str | None,
        endpoint_url: str | None = None,
    ) -> None:
        from pyathena import connect

        if not output_location:
            raise ConfigurationError(
                "Athena needs a results location",
                hint="set SIGNAL_CATALOG_ATHENA_OUTPUT_LOCATION=s3://bucket/prefix/",
            )
        kwargs: dict[str, Any] = {}
        if endpoint_url:
            kwargs["endpoint_url"] = endpoint_url
        self.connection = connect(
            s3_staging_dir=output_location,
            region_name=region,
            work_group=workgroup,
            schema_name=database,
            **kwargs,
        )

    def smoke(self, table: str, location: str) -> SmokeResult:
        """Run the smoke query in Athena (the catalog, not `location`, says where data is)."""
        cursor = self.connection.cursor()
        cursor.execute(smoke_query(table))
        rows = cursor.fetchall()
        columns = tuple(d[0] for d in cursor.description or ())
        return SmokeResult(table, len(rows), columns)
