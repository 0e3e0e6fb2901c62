"""End to end on local Spark: kinesalite → job → lake, merged KPIs equal a pandas oracle."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from processor_testdata import (
    MAX_BEHIND_FOR_DATED_DATA_S,
    assert_cell_partials_match_oracle,
    assert_h3_partials_match_oracle,
    assert_lake_matches_oracle,
    assert_sketch_columns_match_oracle,
    lake_frames,
    put_all,
    workload,
)

from signal_processor.settings import ProcessorSettings
from signal_processor.wiring import start_query


def wait_for_rows_in(lake_root: str, expected: int, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    seen = -1
    while time.monotonic() < deadline:
        try:
            seen = lake_frames(lake_root)["rows_in"]
        except Exception:
            seen = -1
        if seen >= expected:
            return
        time.sleep(1)
    raise AssertionError(f"the job consumed {seen} of {expected} records in {timeout}s")


def test_stream_with_duplicates_late_and_malformed_matches_oracle(
    spark: Any,
    kinesis_client: Any,
    kinesis_endpoint_url: str,
    make_stream: Callable[..., str],
    tmp_path: Path,
) -> None:
    stream = make_stream(shards=2)
    payloads, events, duplicates = workload(600)
    lake_root = f"file://{tmp_path}/lake"
    settings = ProcessorSettings(
        stream_name=stream,
        kinesis_endpoint_url=kinesis_endpoint_url,
        lake_root=lake_root,
        checkpoint_location=f"file://{tmp_path}/checkpoint",
        trigger_seconds=1,
        max_records_per_batch=250,
        shuffle_partitions=2,
        max_event_behind_seconds=MAX_BEHIND_FOR_DATED_DATA_S,
    )
    half = len(payloads) // 2
    put_all(kinesis_client, stream, payloads[:half])
    query = start_query(spark, settings)
    try:
        wait_for_rows_in(lake_root, half)
        put_all(kinesis_client, stream, payloads[half:])  # second wave: dedup across batches
        wait_for_rows_in(lake_root, len(payloads))
    finally:
        query.stop()
    assert query.exception() is None
    assert_lake_matches_oracle(f"{tmp_path}/lake", events, duplicates)
    assert_sketch_columns_match_oracle(f"{tmp_path}/lake", events)  # late events folded too
    assert_h3_partials_match_oracle(f"{tmp_path}/lake", events)
    assert_cell_partials_match_oracle(f"{tmp_path}/lake", events)
    assert lake_frames(f"{tmp_path}/lake")["batches"] >= 3
    # the dedup state's commits are changelogs (wiring.configure_session), not a snapshot each
    assert list((tmp_path / "checkpoint" / "state").rglob("*.changelog"))
    # ... and the state does not count its rows (a lookup before every write saved): the batches
    # wrote keys, and the total reads 0, as Spark reports it when RocksDB does not count
    states = [p["stateOperators"][0] for p in query.recentProgress if p["numInputRows"] > 0]
    assert sum(state["numRowsUpdated"] for state in states) > 0
    assert {state["numRowsTotal"] for state in states} == {0}


def test_python_workers_run_the_drivers_interpreter(spark: Any) -> None:
    """build_session gives Spark's Python workers this interpreter (not `python3` from PATH)."""
    import sys

    ran = spark.sparkContext.parallelize([0], 1).map(lambda _: __import__("sys").executable)
    assert ran.collect() == [sys.executable]
