"""Parse and validate raw stream records against the shared event schema.

Validation is the pydantic model of libs/common (one definition of the event), run over Arrow
batches, so the processor accepts and rejects exactly what the schema says. Invalid records keep
their raw payload, a reason code and a detail, and get a dedup key that can never equal an
event id, so one dedup step serves both kinds.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
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
    ("read_time", pa.timestamp("us", tz="UTC")),
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
        "read_time timestamp",
    ]
)
# Dedup runs on (is_valid, dedup_key): an invalid record's key is its stream position, so it
# can never collide with an event id, whatever a client puts in event_id.
DEDUP_COLUMNS = ("is_valid", "dedup_key")
_DETAIL_MAX = 500


@dataclass(frozen=True)
class TimeBounds:
    """How far an event may be dated ahead of / behind its arrival in the stream."""

    max_ahead: dt.timedelta = dt.timedelta(minutes=5)
    max_behind: dt.timedelta = dt.timedelta(days=30)

    def reason(self, event_time: dt.datetime, arrival: dt.datetime) -> str | None:
        """None when plausible, else the quarantine detail."""
        if event_time - arrival > self.max_ahead:
            ahead = event_time - arrival
            return f"event_time {event_time.isoformat()} is {ahead} ahead of its arrival"
        if arrival - event_time > self.max_behind:
            behind = arrival - event_time
            return f"event_time {event_time.isoformat()} is {behind} behind its arrival"
        return None

    def violated(self, event_us: np.ndarray, arrival_us: np.ndarray) -> np.ndarray:
        """`reason`'s rule over whole columns (epoch microseconds): True where it is not None."""
        ahead_us = self.max_ahead // dt.timedelta(microseconds=1)
        behind_us = self.max_behind // dt.timedelta(microseconds=1)
        return (event_us - arrival_us > ahead_us) | (arrival_us - event_us > behind_us)  # type: ignore[no-any-return]


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


EVENT_SCHEMA = pa.schema([(f.name, arrow_type(f.kind)) for f in EVENT_FIELDS])


def validate_batch(batch: pa.RecordBatch, bounds: TimeBounds = TimeBounds()) -> pa.Table:
    """Validate one Arrow batch of source rows (data, shard_id, sequence_number, …).

    Valid by the schema is not enough: an event dated implausibly far from its arrival (see
    `TimeBounds`) is quarantined as `implausible_time`, so it stays visible and counted.
    The result holds the valid rows first, then the invalid ones (row order carries no meaning
    downstream), in VALIDATED_SCHEMA.

    Per record only the schema's parse runs in Python; the columns are built a field at a time
    and the time bounds compared as whole columns (building the table from a dict per event
    cost more than the parse itself). The detail of a rejected time comes from
    `TimeBounds.reason`, which the column comparison matches to the microsecond.
    """
    parsed_at: list[int] = []
    events: list[dict[str, Any]] = []
    rejected: dict[int, tuple[str | None, str | None]] = {}  # index -> (reason, detail)
    payloads = batch.column("data").to_pylist()
    for i, data in enumerate(payloads):
        event, reason, detail = classify(data)
        if event is not None:
            parsed_at.append(i)
            events.append(event.__dict__)  # the model's field values (extra fields are forbidden)
        else:
            rejected[i] = (reason, detail)
    parsed = _event_table(events)
    implausible = _implausible(parsed, batch.column("arrival_time").take(parsed_at), bounds)
    for j in implausible:
        i = parsed_at[j]
        arrival = batch.column("arrival_time")[i].as_py()
        rejected[i] = ("implausible_time", bounds.reason(events[j]["event_time"], arrival))
    if implausible:
        keep = np.ones(len(parsed_at), dtype=bool)
        keep[implausible] = False
        parsed = parsed.filter(pa.array(keep))
        valid_at = [i for i, k in zip(parsed_at, keep, strict=True) if k]
    else:
        valid_at = parsed_at
    no_text = [pa.nulls(len(valid_at), pa.string())] * 3
    parts = [_rows(batch, valid_at, parsed.columns, parsed["event_id"], no_text, is_valid=True)]
    if rejected:
        invalid_at = sorted(rejected)
        bad = batch.take(pa.array(invalid_at, pa.int64()))
        position = pc.binary_join_element_wise(
            bad.column("shard_id"),
            bad.column("sequence_number"),
            bad.column("sub_sequence_number").cast(pa.string()),
            ":",
        )
        nulls = [pa.nulls(len(invalid_at), f.type) for f in EVENT_SCHEMA]
        texts = [
            [rejected[i][0] for i in invalid_at],
            [rejected[i][1] for i in invalid_at],
            [payloads[i].decode("utf-8", "replace") for i in invalid_at],
        ]
        parts.append(
            _rows(
                batch,
                invalid_at,
                nulls,
                position,
                [pa.array(values, pa.string()) for values in texts],
                is_valid=False,
            )
        )
    return pa.concat_tables(parts)


def _event_table(events: list[dict[str, Any]]) -> pa.Table:
    """The parsed events as EVENT_SCHEMA columns, built a column at a time."""
    return pa.Table.from_arrays(
        [pa.array([e[f.name] for e in events], type=f.type) for f in EVENT_SCHEMA],
        schema=EVENT_SCHEMA,
    )


def _implausible(events: pa.Table, arrivals: pa.Array, bounds: TimeBounds) -> list[int]:
    """Indices of the events dated further from their arrival than `bounds` allows."""
    if not events.num_rows:
        return []
    event_us = events["event_time"].cast(pa.int64()).to_numpy()
    late = bounds.violated(event_us, arrivals.cast(pa.int64()).to_numpy())
    return [int(j) for j in np.flatnonzero(late)]


def _rows(
    batch: pa.RecordBatch,
    at: list[int],
    event_columns: list[Any],
    dedup_key: Any,
    reason_detail_raw: list[Any],
    *,
    is_valid: bool,
) -> pa.Table:
    taken = batch.take(pa.array(at, pa.int64()))
    columns = [
        *event_columns,
        pa.repeat(pa.scalar(is_valid), len(at)),
        dedup_key,
        *reason_detail_raw,
        *(taken.column(name) for name, _ in PASSTHROUGH),
    ]
    return pa.Table.from_arrays(columns, schema=VALIDATED_SCHEMA)
