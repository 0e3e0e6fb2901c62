"""The Spark StructType agrees with the declaration (needs pyspark, not a JVM)."""

from __future__ import annotations

import sys

from pyspark.sql import types as t

from signal_common.lake import ALL_TABLES, SIGNAL_STRENGTH_BY_OPERATOR
from signal_common.spark_schema import event_struct_type, table_struct_type

EXPECTED_SPARK = {
    "event_id": (t.StringType(), False),
    "device_id": (t.StringType(), False),
    "event_time": (t.TimestampType(), False),
    "operator": (t.StringType(), False),
    "network_type": (t.StringType(), False),
    "signal_dbm": (t.IntegerType(), False),
    "provider": (t.StringType(), False),
    "gps_precision_m": (t.DoubleType(), False),
    "latitude": (t.DoubleType(), False),
    "longitude": (t.DoubleType(), False),
    "postal_code": (t.StringType(), False),
    "status": (t.StringType(), False),
    "activity": (t.StringType(), False),
    "speed_kmh": (t.DoubleType(), True),
    "satellites": (t.IntegerType(), True),
    "cell_id": (t.LongType(), True),
}


def test_event_struct_type_matches_field_by_field() -> None:
    struct = event_struct_type()
    assert struct.names == list(EXPECTED_SPARK)
    for field in struct.fields:
        assert (field.dataType, field.nullable) == EXPECTED_SPARK[field.name]


def test_table_struct_types_cover_every_column_and_partition() -> None:
    for table in ALL_TABLES:
        struct = table_struct_type(table)
        assert struct.names == [*table.column_names, "dt", "hour"]
    kpi = table_struct_type(SIGNAL_STRENGTH_BY_OPERATOR, with_partitions=False)
    assert kpi["signal_sum"].dataType == t.LongType()
    assert kpi["window_start"].dataType == t.TimestampType()


def test_importing_the_package_does_not_import_pyspark() -> None:
    import os
    import subprocess

    code = (
        "import sys, signal_common.schema, signal_common.lake, signal_common.quality; "
        "print('pyspark' in sys.modules)"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    assert out.stdout.strip() == "False"
