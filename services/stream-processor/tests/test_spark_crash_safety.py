"""Crash safety: SIGKILL mid-batch and a crash after writing but before commit lose nothing
and double-count nothing (the job runs in a subprocess, restarted from its checkpoint)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from processor_testdata import (
    MAX_BEHIND_FOR_DATED_DATA_S,
    assert_lake_matches_oracle,
    put_all,
    workload,
)

IDLE_BATCHES = "3"


def _start(
    tmp_path: Path, stream: str, url: str, *extra: str, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    argv = [
        sys.executable, "-m", "signal_processor.cli", "run",
        "--lake-root", f"file://{tmp_path}/lake",
        "--checkpoint", f"file://{tmp_path}/checkpoint",
        "--stream", stream,
        "--endpoint-url", url,
        "--trigger-seconds", "0.5",
        "--max-records-per-batch", "150",
        *extra,
    ]  # fmt: skip
    full_env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(p for p in sys.path if p),
        "SIGNAL_PROCESSOR_SHUFFLE_PARTITIONS": "2",
        "SIGNAL_PROCESSOR_LOG_LEVEL": "WARNING",
        "SIGNAL_PROCESSOR_MAX_EVENT_BEHIND_SECONDS": str(MAX_BEHIND_FOR_DATED_DATA_S),
        **(env or {}),
    }
    log = open(tmp_path / "job.log", "ab")  # noqa: SIM115 - closed when the process ends
    return subprocess.Popen(argv, env=full_env, stdout=log, stderr=log, start_new_session=True)


def _log_tail(tmp_path: Path) -> str:
    return (tmp_path / "job.log").read_text(errors="replace")[-4000:]


def _batches_written(tmp_path: Path) -> int:
    return len(list((tmp_path / "lake" / "_batches").glob("*/pipeline_batches/*.json")))


def test_kills_and_a_crash_before_commit_leave_exactly_the_oracle(
    kinesis_client: Any,
    kinesis_endpoint_url: str,
    make_stream: Callable[..., str],
    tmp_path: Path,
) -> None:
    stream = make_stream(shards=2)
    payloads, events, duplicates = workload(500, seed=11)
    put_all(kinesis_client, stream, payloads)
    url = kinesis_endpoint_url

    # 1. the job writes every table of batch 1, then dies before Spark commits the batch
    crashed = _start(tmp_path, stream, url, env={"SIGNAL_PROCESSOR_FAULT_AFTER_WRITE_BATCH": "1"})
    assert crashed.wait(timeout=240) == 137, _log_tail(tmp_path)
    assert list((tmp_path / "lake" / "_batches").glob(f"r-*/status_count/{1:012d}.json"))
    assert not (tmp_path / "checkpoint" / "commits" / "1").exists()

    # 2. SIGKILL at random moments while batches are in flight
    rng = random.Random(5)
    for _ in range(2):
        job = _start(tmp_path, stream, url)
        before = _batches_written(tmp_path)
        deadline = time.monotonic() + 120
        while _batches_written(tmp_path) <= before and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(rng.uniform(0.0, 1.5))
        os.killpg(job.pid, signal.SIGKILL)
        job.wait(timeout=30)

    # 3. a clean run to the end
    final = _start(tmp_path, stream, url, "--stop-when-idle", IDLE_BATCHES)
    assert final.wait(timeout=300) == 0, _log_tail(tmp_path)
    assert_lake_matches_oracle(f"{tmp_path}/lake", events, duplicates)
