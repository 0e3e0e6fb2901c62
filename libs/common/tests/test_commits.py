"""The commit-head record and the batch file names: the bytes the processor writes, read back."""

from __future__ import annotations

import pytest

from signal_common.commits import (
    CommitHead,
    committed_seq,
    decode_commit_head,
    encode_commit_head,
    part_file_name,
)

HEAD = CommitHead(
    run_id="r-00000000000a",
    batch_id=3,
    committed_at="2026-11-24T03:00:00.000001+00:00",
    resume={"shards": {"s-1": {"after": "49", "seen_ms": 5}}, "finished": ["s-0"]},
    seq=4,
)
# what the processor has written since heads carried a sequence (stream-processor 0.5)
STORED = (
    b'{"run_id": "r-00000000000a", "batch_id": 3, '
    b'"committed_at": "2026-11-24T03:00:00.000001+00:00", '
    b'"resume": {"shards": {"s-1": {"after": "49", "seen_ms": 5}}, "finished": ["s-0"]}, '
    b'"seq": 4}'
)


def test_a_head_is_stored_as_it_always_was_and_reads_back_equal() -> None:
    assert encode_commit_head(HEAD) == STORED
    assert decode_commit_head(STORED) == HEAD
    assert decode_commit_head(encode_commit_head(HEAD)) == HEAD


def test_a_head_from_before_sequences_reads_as_seq_0_and_a_head_needs_its_fields() -> None:
    old = b'{"run_id": "r-1", "batch_id": 7, "committed_at": "t", "resume": {}}'
    assert decode_commit_head(old) == CommitHead("r-1", 7, "t", {}, 0)
    with pytest.raises(KeyError):
        decode_commit_head(b'{"run_id": "r-1", "seq": 3}')


def test_committed_seq_is_the_highest_over_decoded_and_stored_heads() -> None:
    assert committed_seq([]) == 0
    assert committed_seq([HEAD]) == 4
    later = CommitHead("r-00000000000b", 0, "u", {}, 9)
    assert committed_seq([later, HEAD]) == 9
    # a stored head is read for its seq alone: any version counts, one without a seq as 0
    assert committed_seq([STORED, b'{"run_id": "r-2", "seq": 6}', b'{"run_id": "r-3"}']) == 6
    assert committed_seq([b'{"run_id": "r-2", "seq": 6}', later]) == 9


def test_part_file_names() -> None:
    assert part_file_name("r-00000000000a", 12, 3) == (
        "part-r-00000000000a-000000000012-00003.snappy.parquet"
    )
