"""Spark forms of the shared schemas; imports pyspark, so only Spark code imports this module."""

from __future__ import annotations

from typing import TYPE_CHECKING

from signal_common.lake import LakeTable
from signal_common.schema import EVENT_FIELDS, Kind

if TYPE_CHECKING:
    from pyspark.sql.types import DataType, StructType


def spark_type(kind: Kind | str) -> DataType:
    """The Spark SQL type of a field kind or Hive type name."""
    from pyspark.sql import types as t

    mapping: dict[str, DataType] = {
        "string": t.StringType(),
        "enum": t.StringType(),
        "timestamp": t.TimestampType(),
        "int": t.IntegerType(),
        "long": t.LongType(),
        "bigint": t.LongType(),
        "double": t.DoubleType(),
        "map<string,bigint>": t.MapType(t.StringType(), t.LongType()),
        "boolean": t.BooleanType(),
    }
    return mapping[kind]


def event_struct_type() -> StructType:
    """The telemetry event as a Spark StructType (nullability from `required`)."""
    from pyspark.sql import types as t

    return t.StructType(
        [
            t.StructField(
                f.name,
                spark_type(f.kind),
                nullable=not f.required,
                metadata={"comment": f.description},
            )
            for f in EVENT_FIELDS
        ]
    )


def table_struct_type(table: LakeTable, *, with_partitions: bool = True) -> StructType:
    """A lake table's columns (and by default its partition keys) as a Spark StructType."""
    from pyspark.sql import types as t

    columns = table.columns + (table.partition_keys if with_partitions else ())
    return t.StructType(
        [t.StructField(c.name, spark_type(c.hive_type), nullable=c.nullable) for c in columns]
    )
