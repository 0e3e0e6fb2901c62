"""Parse and validate raw stream records against the shared event schema.

Validation is the pydantic model of libs/common (one definition of the event), run over Arrow
batches, so the processor accepts and rejects exactly what the schema says. Invalid records keep
their raw payload, a reason code and a detail, and get a dedup key that can never equal an
event id, so one dedup step serves both kinds.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pyarrow as pa
from pydantic import ValidationError

from signal_common.schema import (
    EVENT_FIELDS,
    MAX_EVENT_BYTES,
    TelemetryEvent,
    arrow_type,
    field_errors,
    hive_type,
)

PASSTHROUGH = (
    ("shard_id", pa.string()),
    ("sequence_number", pa.string()),
    ("sub_sequence_number", pa.int64()),
    ("arrival_time", pa.timestamp("us", tz="UTC")),
)
VALIDATED_SCHEMA = pa.schema(
    [
        *((f.name, arrow_type(f.kind)) for f in EVENT_FIELDS),
        ("is_valid", pa.bool_()),
        ("dedup_key", pa.string()),
        ("reason", pa.string()),
        ("detail", pa.string()),
        ("raw_payload", pa.string()),
        *PASSTHROUGH,
    ]
)
VALIDATED_DDL = ", ".join(
    [f"{f.name} {hive_type(f.kind)}" for f in EVENT_FIELDS]
    + [
        "is_valid boolean",
        "dedup_key string",
        "reason string",
        "detail string",
        "raw_payload string",
        "shard_id string",
        "sequence_number string",
        "sub_sequence_number bigint",
        "arrival_time timestamp",
    ]
)
# Dedup runs on (is_valid, dedup_key): an invalid record's key is its stream position, so it
# can never collide with an event id, whatever a client puts in event_id.
DEDUP_COLUMNS = ("is_valid", "dedup_key")
_DETAIL_MAX = 500


def classify(data: bytes) -> tuple[Any | None, str | None, str | None]:
    """(event, None, None) for a valid record, else (None, reason, detail)."""
    if len(data) > MAX_EVENT_BYTES:
        return None, "oversize", f"payload is {len(data)} bytes; the limit is {MAX_EVENT_BYTES}"
    try:
        return TelemetryEvent.model_validate_json(data), None, None
    except ValidationError as exc:
        errors = field_errors(exc)
        first = errors[0]
        more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
        detail = f"{first.field}: {first.message}{more}"
        return None, first.reason, detail[:_DETAIL_MAX]


def validate_batch(batch: pa.RecordBatch) -> pa.RecordBatch:
    """Validate one Arrow batch of source rows (data, shard_id, sequence_number, …)."""
    columns: dict[str, list[Any]] = {name: [] for name in VALIDATED_SCHEMA.names}
    data_col = batch.column("data").to_pylist()
    shard = batch.column("shard_id").to_pylist()
    seq = batch.column("sequence_number").to_pylist()
    sub = batch.column("sub_sequence_number").to_pylist()
    for i, data in enumerate(data_col):
        event, reason, detail = classify(data)
        valid = event is not None
        for f in EVENT_FIELDS:
            columns[f.name].append(getattr(event, f.name) if valid else None)
        columns["is_valid"].append(valid)
        position = f"{shard[i]}:{seq[i]}:{sub[i]}"
        columns["dedup_key"].append(event.event_id if valid else position)  # type: ignore[union-attr]
        columns["reason"].append(reason)
        columns["detail"].append(detail)
        columns["raw_payload"].append(None if valid else data.decode("utf-8", "replace"))
    for name, _ in PASSTHROUGH:
        columns[name] = batch.column(name).to_pylist()
    return pa.RecordBatch.from_arrays(
        [pa.array(columns[f.name], type=f.type) for f in VALIDATED_SCHEMA], schema=VALIDATED_SCHEMA
    )


def validate_batches(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """mapInArrow adapter over `validate_batch`."""
    for batch in batches:
        if batch.num_rows:
            yield validate_batch(batch)
