"""PutRecords batching within every Kinesis limit (pure: no clients, no clocks)."""

from __future__ import annotations

from dataclasses import dataclass, field

from signal_producer.core.records import GeneratedRecord

MAX_RECORDS_PER_CALL = 500
MAX_BYTES_PER_CALL = 5 * 1024 * 1024  # data + partition keys of every record in the call
MAX_BYTES_PER_RECORD = 1024 * 1024  # data + partition key
MAX_PARTITION_KEY_CHARS = 256


@dataclass(slots=True)
class Entry:
    """A record on its way to Kinesis: the encoded bytes and how many times it was sent."""

    record: GeneratedRecord
    data: bytes
    key: str
    size: int = 0  # bytes counted against the limits: data + partition key (set by make_entry)
    attempts: int = 0
    done: bool = False  # accepted by Kinesis or dead-lettered
    error_code: str | None = None  # the last per-entry error
    error_message: str | None = None


def make_entry(record: GeneratedRecord) -> Entry:
    """Encode a record for sending."""
    data = record.data.encode("utf-8")
    key = record.partition_key
    size = len(data) + (len(key) if key.isascii() else len(key.encode("utf-8")))
    return Entry(record=record, data=data, key=key, size=size)


def rejection_reason(entry: Entry) -> str | None:
    """Why Kinesis could never accept this entry (checked before sending), or None."""
    key_chars = len(entry.key)
    if not 1 <= key_chars <= MAX_PARTITION_KEY_CHARS:
        return f"partition key has {key_chars} characters (Kinesis allows 1 to 256)"
    if not entry.data:
        return "empty data (Kinesis requires at least one byte)"
    if entry.size > MAX_BYTES_PER_RECORD:
        return f"record is {entry.size} bytes with its partition key (Kinesis allows 1 MiB)"
    return None


@dataclass
class BatchBuilder:
    """Collects entries into batches of at most 500 records and 5 MiB."""

    max_records: int = MAX_RECORDS_PER_CALL
    max_bytes: int = MAX_BYTES_PER_CALL
    _entries: list[Entry] = field(default_factory=list)
    _bytes: int = 0

    def add(self, entry: Entry) -> list[Entry] | None:
        """Add an entry; returns the batch that had to be closed to make room, if any.

        The entry must have passed `rejection_reason`. A batch is closed as soon as it holds
        `max_records` records, or before an entry that would take it over `max_bytes`.
        """
        closed = None
        if self._entries and self._bytes + entry.size > self.max_bytes:
            closed = self.take()
        self._entries.append(entry)
        self._bytes += entry.size
        if len(self._entries) >= self.max_records:
            if closed is not None:  # cannot happen with max_records >= 2; keep both safe
                raise AssertionError("two batches closed by one entry")
            closed = self.take()
        return closed

    def take(self) -> list[Entry]:
        """The open batch (possibly empty); a new one is started."""
        batch, self._entries, self._bytes = self._entries, [], 0
        return batch

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def pending_bytes(self) -> int:
        """Bytes in the open batch."""
        return self._bytes
