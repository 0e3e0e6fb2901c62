"""Signal Stream catalog manager: keeps the Glue Data Catalog true to the Parquet lake."""

from __future__ import annotations

__version__ = "0.5.0"
