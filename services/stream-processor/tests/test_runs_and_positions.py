"""Runs (one per checkpoint) in the lake, resume positions, the retention-gap check and retries
of connection errors: no Spark, no network."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from signal_processor.adapters.kinesis_client import SourceOptions, call_with_backoff
from signal_processor.adapters.kinesis_source import RetentionGapError, check_retention
from signal_processor.adapters.lake_writer import (
    LakeWriter,
    LocalStorage,
    discard_uncommitted,
    run_heads,
)
from signal_processor.core.positions import next_offset, resume_state

ROWS = pa.table({"x": [1, 2], "dt": ["2026-11-24", "2026-11-24"], "hour": [3, 4]})


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*.parquet")}


def test_runs_never_overwrite_each_other_and_uncommitted_batches_are_discarded(
    tmp_path: Path,
) -> None:
    storage, root = LocalStorage(), str(tmp_path)
    first = LakeWriter(root, storage, run_id="r-00000000000a")
    first.write_arrow(ROWS, "events", 0)
    first.commit(0, {"shards": {"s-1": {"after": "5"}}, "finished": []})
    first.write_arrow(ROWS, "events", 1)  # crashed before its commit
    assert _files(tmp_path) == {
        "events/dt=2026-11-24/hour=3/part-r-00000000000a-000000000000-00000.snappy.parquet",
        "events/dt=2026-11-24/hour=4/part-r-00000000000a-000000000000-00001.snappy.parquet",
        "events/dt=2026-11-24/hour=3/part-r-00000000000a-000000000001-00000.snappy.parquet",
        "events/dt=2026-11-24/hour=4/part-r-00000000000a-000000000001-00001.snappy.parquet",
    }
    legacy = tmp_path / "_batches" / "events" / "000000000007.json"  # layout of 0.2: ignored
    legacy.parent.mkdir(parents=True)
    legacy.write_text('{"batch_id": 7, "files": ["file:///nowhere"]}')

    second = LakeWriter(root, storage, run_id="r-00000000000b")
    assert discard_uncommitted(storage, root, current_run=second.run_id) == 2
    second.write_arrow(ROWS, "events", 0)  # batch 0 again, of another run
    second.commit(0, {"shards": {"s-1": {"after": "9"}}, "finished": []})

    assert _files(tmp_path) == {
        "events/dt=2026-11-24/hour=3/part-r-00000000000a-000000000000-00000.snappy.parquet",
        "events/dt=2026-11-24/hour=4/part-r-00000000000a-000000000000-00001.snappy.parquet",
        "events/dt=2026-11-24/hour=3/part-r-00000000000b-000000000000-00000.snappy.parquet",
        "events/dt=2026-11-24/hour=4/part-r-00000000000b-000000000000-00001.snappy.parquet",
    }
    assert legacy.exists()
    heads = run_heads(storage, root)
    assert [(h.run_id, h.batch_id) for h in heads] == [("r-00000000000a", 0), ("r-00000000000b", 0)]
    assert heads[-1].resume == {"shards": {"s-1": {"after": "9"}}, "finished": []}
    # a replay within one run still replaces exactly its own attempt
    second.write_arrow(ROWS.slice(0, 1), "events", 0)
    assert not (
        tmp_path
        / "events/dt=2026-11-24/hour=4/part-r-00000000000b-000000000000-00001.snappy.parquet"
    ).exists()


def test_resume_state_records_where_each_shard_continues() -> None:
    offset = {
        "n": 4,
        "t": 1000,
        "shards": {
            "a": {"after": "10", "seen_ms": 50},
            "b": {"at": "TRIM_HORIZON"},
            "c": {"after": "7", "seen_ms": 40},
        },
        "finished": ["old"],
    }
    boundaries = {
        "a": {"last_seq": "25", "last_arrival_ms": 90, "caught_up_ms": 120},
        "b": {"last_seq": None},
        "c": {"last_seq": None, "closed": True},
    }
    assert resume_state(offset, boundaries) == {
        "shards": {"a": {"after": "25", "seen_ms": 120}, "b": {"at": "TRIM_HORIZON"}},
        "finished": ["c", "old"],
    }
    # a shard that read nothing but reached its tip is known to be read up to then
    quiet = resume_state(offset, {"a": {"caught_up_ms": 500}, "b": {}, "c": {}})
    assert quiet["shards"]["a"] == {"after": "10", "seen_ms": 500}


def test_read_time_never_goes_back() -> None:
    current = {"n": 3, "t": 5_000, "shards": {"a": {"at": "TRIM_HORIZON"}}, "finished": []}
    shards = [{"ShardId": "a"}]
    assert next_offset(current, {"a": {}}, shards, now_ms=9_000)["t"] == 9_000
    assert next_offset(current, {"a": {}}, shards, now_ms=4_000)["t"] == 5_001  # clock stepped back


class _FakeKinesis:
    """Answers the retention check's calls from fixed data and records them."""

    def __init__(self, retention_hours: int, oldest_seq: str | None) -> None:
        self.retention_hours, self.oldest_seq = retention_hours, oldest_seq
        self.calls: list[str] = []

    def describe_stream_summary(self, **_: Any) -> dict[str, Any]:
        self.calls.append("describe")
        return {"StreamDescriptionSummary": {"RetentionPeriodHours": self.retention_hours}}

    def get_shard_iterator(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(f"iterator {kwargs['ShardIteratorType']}")
        return {"ShardIterator": "it"}

    def get_records(self, **_: Any) -> dict[str, Any]:
        self.calls.append("records")
        if self.oldest_seq is None:
            return {"Records": []}
        arrived = dt.datetime(2026, 11, 24, 9, tzinfo=dt.UTC)
        return {
            "Records": [{"SequenceNumber": self.oldest_seq, "ApproximateArrivalTimestamp": arrived}]
        }


NOW_MS = int(dt.datetime(2026, 11, 24, 12, tzinfo=dt.UTC).timestamp() * 1000)
OPTS = SourceOptions(stream="s", progress_location="/tmp/unused")


def _offset(seen_hours_ago: float) -> dict[str, Any]:
    seen = NOW_MS - int(seen_hours_ago * 3_600_000)
    return {"n": 9, "t": NOW_MS, "shards": {"shardId-1": {"after": "100", "seen_ms": seen}}}


def test_a_position_older_than_the_retention_with_newer_records_is_a_gap() -> None:
    client = _FakeKinesis(retention_hours=24, oldest_seq="250")
    with pytest.raises(RetentionGapError) as raised:
        check_retention(client, OPTS, _offset(seen_hours_ago=30), now_ms=NOW_MS)
    message = str(raised.value)
    assert "shard shardId-1 of stream s was last read up to 2026-11-23T06:00:00+00:00" in message
    assert "24 h retention" in message
    assert "oldest retained record arrived 2026-11-24T09:00:00+00:00" in message
    assert "'Retention gap'" in message


def test_no_gap_when_the_position_is_still_retained_or_nothing_newer_exists() -> None:
    recent = _FakeKinesis(retention_hours=24, oldest_seq="250")
    check_retention(recent, OPTS, _offset(seen_hours_ago=0.5), now_ms=NOW_MS)
    assert recent.calls == []  # steady state: no extra calls
    within = _FakeKinesis(retention_hours=48, oldest_seq="250")
    check_retention(within, OPTS, _offset(seen_hours_ago=30), now_ms=NOW_MS)
    assert within.calls == ["describe"]
    empty = _FakeKinesis(retention_hours=24, oldest_seq=None)  # a quiet shard, all aged out
    check_retention(empty, OPTS, _offset(seen_hours_ago=30), now_ms=NOW_MS)
    still_there = _FakeKinesis(retention_hours=24, oldest_seq="100")  # the position itself
    check_retention(still_there, OPTS, _offset(seen_hours_ago=30), now_ms=NOW_MS)


def test_connection_errors_are_retried_with_backoff_then_raised() -> None:
    attempts: list[int] = []
    sleeps: list[float] = []

    def flaky(**_: Any) -> str:
        attempts.append(1)
        if len(attempts) < 3:
            raise EndpointConnectionError(endpoint_url="http://127.0.0.1:9")
        return "ok"

    assert call_with_backoff(flaky, max_retries=5, sleep=sleeps.append) == "ok"
    assert len(attempts) == 3
    assert len(sleeps) == 2
    assert 0 < sleeps[0] <= 0.1

    def down(**_: Any) -> str:
        raise EndpointConnectionError(endpoint_url="http://127.0.0.1:9")

    with pytest.raises(EndpointConnectionError):
        call_with_backoff(down, max_retries=2, sleep=lambda _: None)

    def denied(**_: Any) -> str:
        raise ClientError({"Error": {"Code": "AccessDeniedException"}}, "GetRecords")

    with pytest.raises(ClientError):  # not transient: no retry
        call_with_backoff(denied, max_retries=5, sleep=sleeps.append)
    assert len(sleeps) == 2


def test_every_batch_gets_the_next_lake_wide_sequence_across_runs(tmp_path: Path) -> None:
    """Rows carry their batch's commit_seq; a new checkpoint continues after the highest
    committed one (compaction relies on it: signal_common.lake)."""
    import pyarrow.parquet as pq

    from signal_processor.adapters.progress import LocalProgressStore
    from signal_processor.settings import ProcessorSettings
    from signal_processor.wiring import start_run

    storage, root = LocalStorage(), str(tmp_path / "lake")
    settings = ProcessorSettings(lake_root=root, checkpoint_location=str(tmp_path / "cp1"))
    first = start_run(settings, LocalProgressStore(str(tmp_path / "cp1")), storage)
    assert first.seq_base == 0
    writer = LakeWriter(root, storage, run_id=first.run_id, seq_base=first.seq_base)
    for batch in range(3):
        writer.write_arrow(ROWS, "events", batch)
        writer.commit(batch, {"shards": {}, "finished": []})
    writer.write_arrow(ROWS, "events", 3)  # never committed: the next run deletes it

    again = start_run(settings, LocalProgressStore(str(tmp_path / "cp1")), storage)
    assert (again.run_id, again.seq_base) == (first.run_id, 0)  # the same run keeps its base
    second = start_run(
        settings.model_copy(update={"checkpoint_location": str(tmp_path / "cp2")}),
        LocalProgressStore(str(tmp_path / "cp2")),
        storage,
    )
    assert (second.seq_base, second.discarded_files) == (3, 2)
    later = LakeWriter(root, storage, run_id=second.run_id, seq_base=second.seq_base)
    later.write_arrow(ROWS, "events", 0)
    later.commit(0, {"shards": {}, "finished": []})

    seqs = {
        (p.name.split("-")[2], p.name.split("-")[3]): pq.read_table(p)["commit_seq"][0].as_py()
        for p in (tmp_path / "lake" / "events").rglob("*.parquet")
        if p.name.endswith("-00000.snappy.parquet")
    }
    a, b = first.run_id[2:], second.run_id[2:]
    assert seqs == {
        (a, "000000000000"): 1,
        (a, "000000000001"): 2,
        (a, "000000000002"): 3,
        (b, "000000000000"): 4,
    }
    assert {h.run_id: h.seq for h in run_heads(storage, root)} == {
        first.run_id: 3,
        second.run_id: 4,
    }
    compacted = pq.read_table(next((tmp_path / "lake" / "events").rglob("*.parquet")))
    assert compacted["compacted"].to_pylist() == [False]
