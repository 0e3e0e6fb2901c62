"""Signal Stream's stream processor: Kinesis → validate → dedup → event-time KPIs → Parquet lake."""

from __future__ import annotations

__version__ = "0.8.4"
