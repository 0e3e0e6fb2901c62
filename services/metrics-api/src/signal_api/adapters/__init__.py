"""The edges of the Metrics API: query engines (DuckDB over the local lake, Athena)."""
