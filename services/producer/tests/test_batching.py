"""Batches respect every Kinesis limit at its edge."""

from __future__ import annotations

from signal_producer.core.batching import (
    MAX_BYTES_PER_CALL,
    MAX_BYTES_PER_RECORD,
    BatchBuilder,
    make_entry,
    rejection_reason,
)
from signal_producer.core.records import GeneratedRecord


def _entry(size: int, key: str = "k"):  # type: ignore[no-untyped-def]
    """An entry whose data + partition key is exactly `size` bytes."""
    return make_entry(GeneratedRecord(data="x" * (size - len(key)), partition_key=key))


def test_exactly_500_records_close_one_batch() -> None:
    builder = BatchBuilder()
    closed = [builder.add(_entry(10)) for _ in range(500)]
    assert all(c is None for c in closed[:499])
    assert closed[499] is not None
    assert len(closed[499]) == 500
    assert len(builder) == 0


def test_501_records_make_500_plus_1() -> None:
    builder = BatchBuilder()
    batches = [b for b in (builder.add(_entry(10)) for _ in range(501)) if b]
    batches.append(builder.take())
    assert [len(b) for b in batches] == [500, 1]


def test_exactly_5_mib_fits_in_one_call() -> None:
    builder = BatchBuilder()
    # 5 records of exactly 1 MiB (data + key) = exactly 5 MiB
    closed = [builder.add(_entry(MAX_BYTES_PER_RECORD)) for _ in range(5)]
    assert closed == [None] * 5
    assert builder.pending_bytes == MAX_BYTES_PER_CALL
    batch = builder.take()
    assert sum(len(e.data) + len(e.key) for e in batch) == 5 * 1024 * 1024


def test_one_byte_over_5_mib_starts_a_new_call() -> None:
    builder = BatchBuilder()
    for _ in range(5):
        builder.add(_entry(MAX_BYTES_PER_RECORD - 1))
    closed = builder.add(_entry(6))  # 5 MiB - 5 + 6 = 5 MiB + 1
    assert closed is not None
    assert len(closed) == 5
    assert len(builder) == 1


def test_record_limits_include_the_partition_key() -> None:
    assert rejection_reason(_entry(MAX_BYTES_PER_RECORD, key="device-1")) is None
    too_big = _entry(MAX_BYTES_PER_RECORD + 1, key="device-1")
    assert "1 MiB" in (rejection_reason(too_big) or "")
    assert rejection_reason(make_entry(GeneratedRecord(data="{}", partition_key=""))) is not None
    assert rejection_reason(make_entry(GeneratedRecord(data="{}", partition_key="k" * 257)))
    assert rejection_reason(make_entry(GeneratedRecord(data="{}", partition_key="k" * 256))) is None
    assert rejection_reason(make_entry(GeneratedRecord(data="", partition_key="k"))) is not None


def test_multibyte_characters_count_as_bytes() -> None:
    entry = make_entry(GeneratedRecord(data="é" * (MAX_BYTES_PER_RECORD // 2), partition_key="k"))
    assert entry.size == MAX_BYTES_PER_RECORD + 1
    assert rejection_reason(entry) is not None
