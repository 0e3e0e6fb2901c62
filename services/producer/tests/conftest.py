"""Fixtures: the shared local-endpoint plugin (kinesalite on a free loopback port) and helpers."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from signal_producer.settings import get_settings

pytest_plugins = ["signal_testing.pytest_plugin"]


def _read_stream(client: Any, stream: str) -> list[dict[str, Any]]:
    """Every record in the stream from TRIM_HORIZON: shard, sequence number, key, data."""
    out: list[dict[str, Any]] = []
    for shard in client.list_shards(StreamName=stream)["Shards"]:
        iterator = client.get_shard_iterator(
            StreamName=stream, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while iterator:
            page = client.get_records(ShardIterator=iterator, Limit=10_000)
            out.extend(
                {
                    "shard_id": shard["ShardId"],
                    "sequence_number": r["SequenceNumber"],
                    "partition_key": r["PartitionKey"],
                    "data": r["Data"].decode("utf-8"),
                }
                for r in page["Records"]
            )
            if not page["Records"] and page.get("MillisBehindLatest", 0) == 0:
                break
            iterator = page.get("NextShardIterator")
    return out


@pytest.fixture
def read_stream(kinesis_client: Any) -> Callable[[str], list[dict[str, Any]]]:
    """Read a whole stream back (all shards)."""
    return lambda stream: _read_stream(kinesis_client, stream)


@pytest.fixture
def read_jsonl() -> Callable[[Path], list[dict[str, Any]]]:
    """Rows of a JSON lines file (empty list if the file does not exist)."""

    def read(path: Path) -> list[dict[str, Any]]:
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line]

    return read


@pytest.fixture
def sample_csv() -> Path:
    """The sample legacy CSV shipped with the service."""
    return Path(__file__).resolve().parents[1] / "samples" / "mobile_logs_sample.csv"


@pytest.fixture
def s3_env(moto_endpoint_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The CLI's settings point at moto for S3 (they are cached: cleared around the test)."""
    monkeypatch.setenv("SIGNAL_PRODUCER_S3_ENDPOINT_URL", moto_endpoint_url)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()
