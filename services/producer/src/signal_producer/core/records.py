"""The unit the producer sends: one stream record plus what the ground truth needs to know."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

RecordKind = Literal["event", "duplicate", "malformed"]


@dataclass(frozen=True, slots=True)
class GeneratedRecord:
    """One record to put on the stream.

    `data` is the exact UTF-8 text sent; `event_id` is the id a consumer can read from it (None
    when the record has no string `event_id`); `reason` is the quarantine reason of a malformed
    record; `send_offset_s` (replay only) is when to send it, in seconds after the first record.
    """

    data: str
    partition_key: str
    kind: RecordKind = "event"
    reason: str | None = None
    event_id: str | None = None
    send_offset_s: float | None = None


def readable_event_id(data: str) -> str | None:
    """The string `event_id` a consumer would read from `data`, or None if there is none."""
    try:
        parsed = json.loads(data)
    except ValueError:
        return None
    if isinstance(parsed, dict) and isinstance(parsed.get("event_id"), str):
        return str(parsed["event_id"])
    return None
