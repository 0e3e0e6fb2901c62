"""Replay of a legacy `mobile_logs.csv`: rows to stream records with their original cadence."""

from __future__ import annotations

import csv
import datetime as dt
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from signal_common.schema import event_to_json, event_to_json_dict
from signal_producer.core.legacy import (
    LEGACY_COLUMNS,
    REQUIRED_LEGACY_COLUMNS,
    LegacyRowError,
    legacy_row_to_event,
)
from signal_producer.core.records import GeneratedRecord

log = logging.getLogger(__name__)

# A legacy `hour` earlier than the previous row's by more than this means the log passed midnight.
_MIDNIGHT_WRAP = dt.timedelta(hours=12)


class LegacyHeaderError(ValueError):
    """The CSV's header is not a mobile_logs.csv header."""


def check_header(header: list[str] | None, *, source: str) -> None:
    """Raise LegacyHeaderError naming the missing columns unless `header` has every required
    legacy column (extra columns are fine)."""
    if not header:
        raise LegacyHeaderError(f"{source} is empty: expected a mobile_logs.csv header")
    present = {name.strip() for name in header}
    missing = [name for name in LEGACY_COLUMNS if name in REQUIRED_LEGACY_COLUMNS - present]
    if missing:
        raise LegacyHeaderError(
            f"{source} is not a mobile_logs.csv: missing column(s) {', '.join(missing)} "
            f"(its header: {', '.join(header)[:200]})"
        )


@dataclass
class ReplayStats:
    """Rows read and rows skipped (with their messages) during a replay."""

    rows: int = 0
    bad_rows: int = 0
    errors: list[str] = field(default_factory=list)
    max_errors_kept: int = 1000


def replay_records(
    lines: Iterable[str],
    *,
    source: str,
    base_date: dt.date,
    partition_key: str = "device_id",
    stats: ReplayStats | None = None,
    on_bad_row: Callable[[LegacyRowError], None] | None = None,
) -> Iterator[GeneratedRecord]:
    """Stream records of a legacy CSV; a bad row is reported (with its line number) and skipped.

    A header without the required legacy columns raises LegacyHeaderError before any record.

    Rows with a time of day only get `base_date`, moved on by a day each time the clock goes back
    by more than 12 hours (the log ran past midnight). `send_offset_s` is the row's event time
    relative to the first good row, so a writer can keep the original cadence.
    """
    stats = stats if stats is not None else ReplayStats()
    reader = csv.DictReader(lines)
    check_header(list(reader.fieldnames or ()), source=source)
    first: dt.datetime | None = None
    previous: dt.datetime | None = None
    day = base_date
    line_number = 1  # the header
    for row in reader:
        line_number = reader.line_num
        stats.rows += 1
        try:
            if None in row:
                raise LegacyRowError(line_number, f"{len(row[None])} more value(s) than columns")
            event = legacy_row_to_event(row, line_number=line_number, base_date=day, source=source)
            event_time: dt.datetime = event.event_time  # type: ignore[attr-defined]
            if (
                previous is not None
                and "T" not in row["hour"]
                and previous - event_time > _MIDNIGHT_WRAP
            ):
                day += dt.timedelta(days=1)
                event = legacy_row_to_event(
                    row, line_number=line_number, base_date=day, source=source
                )
                event_time = event.event_time  # type: ignore[attr-defined]
        except LegacyRowError as exc:
            stats.bad_rows += 1
            if len(stats.errors) < stats.max_errors_kept:
                stats.errors.append(str(exc))
            if on_bad_row is not None:
                on_bad_row(exc)
            else:
                log.warning("bad legacy row skipped", extra={"source": source, "error": str(exc)})
            continue
        first = first or event_time
        previous = event_time
        payload = event_to_json_dict(event)
        yield GeneratedRecord(
            data=event_to_json(event),
            partition_key=str(payload[partition_key]),
            event_id=payload["event_id"],
            send_offset_s=(event_time - first).total_seconds(),
        )
