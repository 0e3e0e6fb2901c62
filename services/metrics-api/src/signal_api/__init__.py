"""Signal Stream Metrics API: the network KPIs, read from the lake through DuckDB or Athena."""

__version__ = "0.9.0"
