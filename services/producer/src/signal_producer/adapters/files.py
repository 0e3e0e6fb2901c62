"""Output files: the ground truth of accepted records and the dead-letter file."""

from __future__ import annotations

import datetime as dt
import json
import threading
from pathlib import Path
from typing import IO, Any

import pyarrow as pa
import pyarrow.parquet as pq

from signal_producer.core.batching import Entry

GROUND_TRUTH_SCHEMA = pa.schema(
    [
        pa.field("shard_id", pa.string(), nullable=False),
        pa.field("sequence_number", pa.string(), nullable=False),
        pa.field("partition_key", pa.string(), nullable=False),
        pa.field("kind", pa.string(), nullable=False),
        pa.field("reason", pa.string()),
        pa.field("event_id", pa.string()),
        pa.field("data", pa.string(), nullable=False),
        pa.field("sent_at", pa.string(), nullable=False),
    ]
)


def utc_now_iso() -> str:
    """The current time as ISO-8601 UTC with a 'Z'."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


class GroundTruthSink:
    """Records accepted by Kinesis, one row each: JSON lines, or Parquet if the path says so."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._parquet = path.suffix == ".parquet"
        self._rows: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._file: IO[str] | None = None
        path.parent.mkdir(parents=True, exist_ok=True)
        if not self._parquet:
            self._file = path.open("w", encoding="utf-8")
        self.count = 0

    def accepted(self, entries: list[tuple[Entry, str, str]], sent_at: str) -> None:
        """Note entries accepted in one PutRecords response: (entry, shard id, sequence no.)."""
        rows = [
            {
                "shard_id": shard_id,
                "sequence_number": sequence_number,
                "partition_key": entry.key,
                "kind": entry.record.kind,
                "reason": entry.record.reason,
                "event_id": entry.record.event_id,
                "data": entry.record.data,
                "sent_at": sent_at,
            }
            for entry, shard_id, sequence_number in entries
        ]
        with self._lock:
            self.count += len(rows)
            if self._file is not None:
                self._file.write("".join(json.dumps(row) + "\n" for row in rows))
                self._file.flush()  # readers (tests, a crashed run's post-mortem) see every batch
            else:
                self._rows.extend(rows)

    def close(self) -> None:
        """Flush and close the file (Parquet is written here)."""
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None
            elif self._parquet:
                table = pa.Table.from_pylist(self._rows, schema=GROUND_TRUTH_SCHEMA)
                pq.write_table(table, self.path)
                self._rows = []
                self._parquet = False  # written once


class DeadLetterSink:
    """Records that will never be on the stream, with why; the file is created on first use."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._file: IO[str] | None = None
        self.count = 0

    def write(self, entries: list[Entry], *, error_code: str, error_message: str) -> None:
        """Append entries with the error that stopped them (an entry's own error wins)."""
        if not entries:
            return
        at = utc_now_iso()
        lines = "".join(
            json.dumps(
                {
                    "error_code": entry.error_code or error_code,
                    "error_message": entry.error_message or error_message,
                    "attempts": entry.attempts,
                    "partition_key": entry.key,
                    "kind": entry.record.kind,
                    "reason": entry.record.reason,
                    "event_id": entry.record.event_id,
                    "data": entry.record.data,
                    "dead_lettered_at": at,
                }
            )
            + "\n"
            for entry in entries
        )
        with self._lock:
            if self._file is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._file = self.path.open("a", encoding="utf-8")
            self._file.write(lines)
            self._file.flush()
            self.count += len(entries)

    def close(self) -> None:
        """Close the file if it was opened."""
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None
