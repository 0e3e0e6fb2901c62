"""The two ways records are validated in Spark give identical rows.

The local job validates inside the Kinesis read (`signal_kinesis_validated`); the Glue entry
point validates Glue's records with `validate` (a mapInArrow step). Both must agree exactly.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from processor_testdata import MALFORMED, encode, make_event, put_all

from signal_processor.job import read_kinesis, validate
from signal_processor.settings import ProcessorSettings


def _collect(stream: Any, expected: int, checkpoint: Path, timeout: float = 180) -> list[Any]:
    rows: list[Any] = []

    def sink(batch: Any, _batch_id: int) -> None:
        rows.extend(batch.collect())

    query = (
        stream.writeStream.foreachBatch(sink)
        .option("checkpointLocation", str(checkpoint))
        .trigger(processingTime="0.5 seconds")
        .start()
    )
    try:
        deadline = time.monotonic() + timeout
        while len(rows) < expected and time.monotonic() < deadline:
            assert query.exception() is None, query.exception()
            time.sleep(0.2)
    finally:
        query.stop()
    return rows


def test_fused_and_mapinarrow_validation_agree(
    spark: Any,
    kinesis_client: Any,
    kinesis_endpoint_url: str,
    make_stream: Callable[..., str],
    tmp_path: Path,
) -> None:
    stream = make_stream(shards=2)
    payloads = [encode(make_event(i)) for i in range(40)] + [raw for raw, _ in MALFORMED]
    put_all(kinesis_client, stream, payloads)

    def settings(name: str) -> ProcessorSettings:
        return ProcessorSettings(
            stream_name=stream,
            kinesis_endpoint_url=kinesis_endpoint_url,
            checkpoint_location=f"file://{tmp_path}/{name}",
            lake_root=f"file://{tmp_path}/lake",
        )

    fused = _collect(read_kinesis(spark, settings("fused")), len(payloads), tmp_path / "q1")
    mapped = _collect(
        validate(read_kinesis(spark, settings("mapped"), validated=False)),
        len(payloads),
        tmp_path / "q2",
    )
    assert len(fused) == len(payloads)
    order = lambda row: (row["shard_id"], int(row["sequence_number"]))  # noqa: E731
    assert sorted(fused, key=order) == sorted(mapped, key=order)
    assert sorted(r["reason"] for r in fused if not r["is_valid"]) == sorted(
        reason for _, reason in MALFORMED
    )
    assert {r["event_id"] for r in fused if r["is_valid"]} == {f"evt-{i:06d}" for i in range(40)}
