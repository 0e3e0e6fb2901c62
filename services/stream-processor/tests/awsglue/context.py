"""Stand-in for awsglue.context: GlueContext wraps a SparkContext and exposes its session."""

from __future__ import annotations

from typing import Any


class GlueContext:
    def __init__(self, spark_context: Any) -> None:
        from pyspark.sql import SparkSession

        self.spark_context = spark_context
        self.spark_session = SparkSession(spark_context)
