"""The alert_events table in the lake: one Parquet file per evaluation cycle, day partitions.

A cycle's file name is fixed by its evaluation time (signal_common.lake.alert_events_file), and
it appears whole or not at all: locally written under a hidden temporary name, fsynced, then
renamed (the commit); on S3 one PUT. A rerun of the same evaluation time finds the file and
does not evaluate again; a cycle killed before its commit leaves only a temporary file, which
the next write of that name replaces and readers never list.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

import pyarrow as pa
import pyarrow.parquet as pq
from botocore.exceptions import BotoCoreError, ClientError

from signal_api.core.errors import LakeUnreadableError
from signal_common.lake import ALERT_EVENTS, alert_events_file, local_path

_CYCLE_FILE = re.compile(r"eval-(\d{8}T\d{6})Z\.parquet")


def _unreadable(what: str, exc: BaseException) -> LakeUnreadableError:
    """A fault that hides alert state (a denied directory or file, a corrupt cycle) as the
    API's 503 `lake_unreadable`: an absent state would read as "all clear"."""
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return LakeUnreadableError(f"the alert state cannot be read: {what} ({reason})")


def cycle_time(name: str) -> dt.datetime | None:
    """The evaluation time of a cycle file's name (a path is fine); None for other files."""
    match = _CYCLE_FILE.fullmatch(name.rsplit("/", 1)[-1])
    if match is None:
        return None
    return dt.datetime.strptime(match.group(1), "%Y%m%dT%H%M%S").replace(tzinfo=dt.UTC)


class AlertStore(Protocol):
    """Where the evaluator keeps its cycles: list, read and atomically write cycle files."""

    def days(self) -> list[str]:
        """The day partitions (YYYY-MM-DD) that exist, oldest first."""
        ...

    def cycles(self, day: str) -> list[dt.datetime]:
        """Evaluation times of the committed cycles of one day (YYYY-MM-DD), oldest first."""
        ...

    def read(self, evaluated_at: dt.datetime) -> pa.Table | None:
        """One cycle's rows, or None when that cycle was never committed."""
        ...

    def write(self, evaluated_at: dt.datetime, table: pa.Table) -> None:
        """Commit one cycle's rows: readers see all of them or none."""
        ...


def _parquet_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()


class LocalAlertStore:
    """alert_events under a `file://` lake root."""

    def __init__(self, lake_root: str, *, before_commit: Callable[[Path], None] | None = None):
        self.root = Path(local_path(lake_root))
        # called between writing the temporary file and renaming it (tests kill the process
        # there; nothing in production sets it)
        self._before_commit = before_commit

    def _path(self, evaluated_at: dt.datetime) -> Path:
        return self.root / alert_events_file(evaluated_at)

    def days(self) -> list[str]:
        try:
            names = os.listdir(self.root / ALERT_EVENTS.name)
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise _unreadable(ALERT_EVENTS.name, exc) from exc
        return sorted(n.removeprefix("dt=") for n in names if n.startswith("dt="))

    def cycles(self, day: str) -> list[dt.datetime]:
        directory = self.root / ALERT_EVENTS.name / f"dt={day}"
        try:
            names = os.listdir(directory)
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise _unreadable(f"{ALERT_EVENTS.name}/dt={day}", exc) from exc
        return sorted(t for t in map(cycle_time, names) if t is not None)

    def read(self, evaluated_at: dt.datetime) -> pa.Table | None:
        try:
            return pq.read_table(self._path(evaluated_at))
        except FileNotFoundError:
            return None
        except (OSError, pa.ArrowException) as exc:
            raise _unreadable(alert_events_file(evaluated_at), exc) from exc

    def write(self, evaluated_at: dt.datetime, table: pa.Table) -> None:
        path = self._path(evaluated_at)
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = path.with_name(f".{path.name}.tmp")
        with open(temp, "wb") as handle:
            handle.write(_parquet_bytes(table))
            handle.flush()
            os.fsync(handle.fileno())
        if self._before_commit is not None:
            self._before_commit(temp)
        os.replace(temp, path)  # the commit


# What S3 can answer besides the object: a denied prefix (AccessDenied), a throttle or outage
# that outlived botocore's retries, no connection. Each hides alert state, so each is the API's
# 503 `lake_unreadable` and a failed evaluator cycle, never an empty state ("all clear").
_S3_FAULTS = (ClientError, BotoCoreError)


class S3AlertStore:
    """alert_events under an `s3://bucket/prefix` lake root (one PUT per cycle: atomic)."""

    def __init__(self, client: Any, lake_root: str) -> None:
        parsed = urlparse(lake_root)
        if parsed.scheme != "s3" or not parsed.netloc:
            raise ValueError(f"{lake_root!r} is not an s3://bucket/prefix URI")
        self.client = client
        self.bucket = parsed.netloc
        self.prefix = parsed.path.strip("/")

    def _key(self, relative: str) -> str:
        return f"{self.prefix}/{relative}" if self.prefix else relative

    def days(self) -> list[str]:
        prefix = self._key(f"{ALERT_EVENTS.name}/")
        found: list[str] = []
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=prefix, Delimiter="/"
            ):
                for common in page.get("CommonPrefixes", []):
                    name = common["Prefix"][len(prefix) :].rstrip("/")
                    if name.startswith("dt="):
                        found.append(name.removeprefix("dt="))
        except _S3_FAULTS as exc:
            raise _unreadable(ALERT_EVENTS.name, exc) from exc
        return sorted(found)

    def cycles(self, day: str) -> list[dt.datetime]:
        prefix = self._key(f"{ALERT_EVENTS.name}/dt={day}/")
        found: list[dt.datetime] = []
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=prefix
            ):
                for item in page.get("Contents", []):
                    moment = cycle_time(item["Key"])
                    if moment is not None:
                        found.append(moment)
        except _S3_FAULTS as exc:
            raise _unreadable(f"{ALERT_EVENTS.name}/dt={day}", exc) from exc
        return sorted(found)

    def read(self, evaluated_at: dt.datetime) -> pa.Table | None:
        name = alert_events_file(evaluated_at)
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=self._key(name))["Body"].read()
        except self.client.exceptions.NoSuchKey:
            return None  # never committed (the one answer that is an absence, not a fault)
        except _S3_FAULTS as exc:
            raise _unreadable(name, exc) from exc
        try:
            return pq.read_table(pa.BufferReader(body))
        except pa.ArrowException as exc:
            raise _unreadable(name, exc) from exc

    def write(self, evaluated_at: dt.datetime, table: pa.Table) -> None:
        self.client.put_object(
            Bucket=self.bucket,
            Key=self._key(alert_events_file(evaluated_at)),
            Body=_parquet_bytes(table),
        )


def days_between(first: dt.datetime, last: dt.datetime) -> list[str]:
    """The YYYY-MM-DD days from first's to last's, inclusive."""
    day, end, days = first.date(), last.date(), []
    while day <= end:
        days.append(day.isoformat())
        day += dt.timedelta(days=1)
    return days


def cycles_between(store: AlertStore, first: dt.datetime, last: dt.datetime) -> list[dt.datetime]:
    """Committed evaluation times in [first, last], oldest first."""
    return [t for day in days_between(first, last) for t in store.cycles(day) if first <= t <= last]


def latest_cycle(
    store: AlertStore, *, before: dt.datetime, lookback: dt.timedelta | None = None
) -> dt.datetime | None:
    """The newest committed evaluation time before `before` (within `lookback`, if given)."""
    first = (before - lookback).date().isoformat() if lookback is not None else ""
    last = before.date().isoformat()
    for day in reversed([d for d in store.days() if first <= d <= last]):
        found = [t for t in store.cycles(day) if t < before]
        if found:
            return found[-1]
    return None
