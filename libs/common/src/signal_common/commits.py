"""What the processor's commits write and the other services read: the run heads and the names
of a batch's files.

A head (`_commits/<run>.json`, signal_common.lake.COMMITS_DIR) records a run's last committed
batch, where reading continues after it, and its lake-wide `seq`: every row with a commit_seq at
or below the highest `seq` of all heads is committed (compaction folds only those).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class CommitHead:
    """A run's last committed batch and where reading continues after it."""

    run_id: str
    batch_id: int
    committed_at: str
    resume: dict[str, Any]
    seq: int = 0
    """The batch's lake-wide commit sequence (0 in heads written before sequences existed)."""


def encode_commit_head(head: CommitHead) -> bytes:
    """The head as stored: one JSON object, keys in the order the processor has always written."""
    return json.dumps(
        {
            "run_id": head.run_id,
            "batch_id": head.batch_id,
            "committed_at": head.committed_at,
            "resume": head.resume,
            "seq": head.seq,
        }
    ).encode()


def decode_commit_head(data: bytes) -> CommitHead:
    """A stored head; KeyError if it lacks a field other than `seq`."""
    raw = json.loads(data)
    return CommitHead(
        raw["run_id"],
        int(raw["batch_id"]),
        raw["committed_at"],
        raw["resume"],
        int(raw.get("seq", 0)),
    )


def committed_seq(heads: Iterable[CommitHead | bytes]) -> int:
    """The lake's committed sequence: the highest `seq` over the run heads (0 with none).

    Heads may be decoded or as stored; of a stored one only `seq` is read, so a reader that
    needs nothing else (compaction) accepts a head of any version.
    """
    return max(
        (h.seq if isinstance(h, CommitHead) else int(json.loads(h).get("seq", 0)) for h in heads),
        default=0,
    )


def part_file_name(run_id: str, batch_id: int, partition: int) -> str:
    """The name of file `partition` of a run's batch in one table partition (dt, hour)."""
    return f"part-{run_id}-{batch_id:012d}-{partition:05d}.snappy.parquet"
