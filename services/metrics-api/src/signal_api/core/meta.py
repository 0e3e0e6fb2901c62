"""What a response says about itself (its `meta`): the lake's state when it was computed (the
data's watermark and the newest batch), and the queries behind it, each with a hash of its SQL
and the partitions it read."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from signal_api.core.queries import Query, TableRead


def sql_sha256(sql: str) -> str:
    """The SHA-256 (hex, all 64 digits) of a query's text as the API builds it: `?` where the
    values are bound, no values, before the row cap's LIMIT; the same text gives the same hash
    whatever the range or the settings."""
    return hashlib.sha256(sql.encode("utf-8")).hexdigest()


def _partition(dt_value: str, hour: int) -> str:
    return f"dt={dt_value}/hour={hour}"


def _hours(read: TableRead) -> int:
    """Hour partitions from `read.first` to `read.last`, both inclusive."""
    first = dt.datetime.fromisoformat(read.first[0]).replace(hour=read.first[1])
    last = dt.datetime.fromisoformat(read.last[0]).replace(hour=read.last[1])
    return int((last - first).total_seconds()) // 3600 + 1


def query_meta(query: Query) -> dict[str, Any]:
    """One query's entry in `meta.queries`: its name, SQL hash and the partitions it read (per
    table, the first and last hour partition, inclusive, and how many hours that spans)."""
    return {
        "name": query.name,
        "sql_sha256": sql_sha256(query.sql),
        "partitions": [
            {
                "table": read.table,
                "first": _partition(*read.first),
                "last": _partition(*read.last),
                "hours": _hours(read),
            }
            for read in query.reads
        ],
    }


@dataclass(frozen=True)
class LakeState:
    """The lake's state as the `lake_state` query read it (None: no batch in its range)."""

    watermark: dt.datetime | None
    newest_batch_time: dt.datetime | None

    @classmethod
    def of_row(cls, row: dict[str, Any]) -> LakeState:
        """From the `lake_state` query's row (epoch seconds or NULL)."""

        def moment(value: float | int | None) -> dt.datetime | None:
            return None if value is None else dt.datetime.fromtimestamp(float(value), dt.UTC)

        return cls(moment(row["watermark"]), moment(row["newest_batch_time"]))


class Recent:
    """The last value of an async fetch, reused for `ttl_s`; concurrent callers of an expired
    value share one fetch and its error (nothing is kept from a failed one)."""

    def __init__(self, *, ttl_s: float, clock: Callable[[], float]) -> None:
        self._ttl_s = ttl_s
        self._clock = clock
        self._value: tuple[float, Any] | None = None
        self._lock = asyncio.Lock()

    async def get(self, fetch: Callable[[], Awaitable[Any]]) -> Any:
        """The value fetched within `ttl_s`, else a new one."""
        if self._value is not None and self._clock() - self._value[0] < self._ttl_s:
            return self._value[1]
        async with self._lock:
            if self._value is not None and self._clock() - self._value[0] < self._ttl_s:
                return self._value[1]
            started = self._clock()  # the age counts from before the fetch: never understated
            value = await fetch()
            self._value = (started, value)
            return value
