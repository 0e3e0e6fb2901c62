"""Spark's checkpoint as the batch writer reads it: a batch's offset-log entry (where the source
read from, the dedup watermark) and what the source recorded reading for it."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from signal_processor.adapters.kinesis_source import batch_boundaries
from signal_processor.adapters.lake_writer import Storage
from signal_processor.adapters.progress import ProgressStore
from signal_processor.core.positions import resume_state


@dataclass
class BatchContext:
    """What foreachBatch needs beyond the DataFrame: the batch's source offset (where each shard
    was read from), what it read (per-shard boundaries) and the dedup watermark."""

    offset: dict[str, Any] | None
    boundaries: dict[str, dict[str, Any]] | None
    watermark_ms: int | None = None

    @property
    def rows_in(self) -> int | None:
        """User records the batch read from the stream."""
        if self.boundaries is None:
            return None
        return sum(int(b.get("user_records", 0)) for b in self.boundaries.values())

    @property
    def read_time_ms(self) -> int | None:
        return None if self.offset is None else self.offset.get("t")

    @property
    def watermark(self) -> dt.datetime | None:
        if not self.watermark_ms:
            return None
        return dt.datetime.fromtimestamp(self.watermark_ms / 1000, dt.UTC)

    def late_dropped(self) -> int | None:
        """Rows dedup discarded as older than its watermark (`read_time <= watermark`, Spark's
        rule). Every row of a batch carries the batch's read time, so it is all or none."""
        rows_in, read_ms = self.rows_in, self.read_time_ms
        if rows_in is None or read_ms is None:
            return None
        return rows_in if self.watermark_ms and read_ms <= self.watermark_ms else 0

    def millis_behind_latest(self) -> int | None:
        """The consumer lag: max MillisBehindLatest over the shards the batch read."""
        lags = [b["millis_behind"] for b in (self.boundaries or {}).values()
                if b.get("millis_behind") is not None]  # fmt: skip
        return max(lags) if lags else None

    def resume(self) -> dict[str, Any] | None:
        """Where reading continues after this batch (recorded as the lake's commit)."""
        if self.offset is None or self.boundaries is None:
            return None
        return resume_state(self.offset, self.boundaries)

    def source_positions(self) -> str | None:
        """JSON: per shard, where the batch started and what it read."""
        if self.offset is None or self.boundaries is None:
            return None
        covered = {
            shard_id: {
                "from": position,
                "to": self.boundaries[shard_id].get("last_seq"),
                "records": self.boundaries[shard_id].get("kinesis_records", 0),
                "closed": bool(self.boundaries[shard_id].get("closed")),
            }
            for shard_id, position in self.offset["shards"].items()
        }
        return json.dumps(covered, sort_keys=True)


def checkpoint_batch_context(
    checkpoint: Storage, checkpoint_location: str, store: ProgressStore, batch_id: int
) -> BatchContext:
    """Read Spark's offset log entry of the batch (our source's end offset and the watermark)
    and the source's boundaries for it, wherever the checkpoint lives (local or S3)."""
    data = checkpoint.read_bytes(f"{checkpoint_location.rstrip('/')}/offsets/{batch_id}")
    if data is None:
        return BatchContext(None, None)
    lines = data.decode().splitlines()  # v1, the batch metadata, one line per source
    metadata, offset = json.loads(lines[1]), json.loads(lines[2])
    return BatchContext(offset, batch_boundaries(store, offset), metadata.get("batchWatermarkMs"))
