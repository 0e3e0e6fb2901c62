"""Benchmark partition registration against moto server: BatchCreatePartition (≤100 a call, what
`sync` does) vs one CreatePartition call per partition (the baseline), measured in the same run.

Prints figures and the ratio, then one JSON object as the last line; never fails on timing.
Absolute numbers are moto's, not Glue's: the ratio (mostly round trips saved) is the point.
Options: `--partitions N` (default 1,000), `--quick` (50 partitions: proves the script runs).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

import boto3

from signal_catalog.adapters.glue import GlueCatalog
from signal_catalog.core.partitions import Partition, partition_input
from signal_catalog.core.tables import table_input
from signal_common.lake import STATUS_COUNT
from signal_local.endpoints import FAKE_CREDENTIALS, start_moto

PARTITIONS = 1_000
LAKE_ROOT = "s3://bench-lake/lake"


def _partitions(n: int) -> list[Partition]:
    return [
        Partition(f"2026-{1 + i // (24 * 28):02d}-{1 + (i // 24) % 28:02d}", i % 24)
        for i in range(n)
    ]


def _fresh_catalog(client: object) -> GlueCatalog:
    catalog = GlueCatalog(client, f"bench_{uuid.uuid4().hex[:8]}")
    catalog.ensure_database("benchmark")
    catalog.create_table(table_input(STATUS_COUNT, LAKE_ROOT))
    return catalog


def main(argv: list[str] | None = None) -> int:
    """Run both variants once and print the figures; the last line is one JSON object."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--partitions", type=int, default=PARTITIONS)
    parser.add_argument(
        "--quick", action="store_true", help="50 partitions (CI: proves the script runs)"
    )
    args = parser.parse_args(argv)
    count = 50 if args.quick else args.partitions
    os.environ.update(FAKE_CREDENTIALS)
    with tempfile.TemporaryDirectory() as logs:
        moto = start_moto(Path(logs))
        try:
            client = boto3.client("glue", endpoint_url=moto.url, region_name="us-east-1")
            inputs = [partition_input(STATUS_COUNT, LAKE_ROOT, p) for p in _partitions(count)]

            baseline = _fresh_catalog(client)
            start = time.perf_counter()
            for item in inputs:
                client.create_partition(
                    DatabaseName=baseline.database, TableName="status_count", PartitionInput=item
                )
            one_by_one = time.perf_counter() - start

            batched_catalog = _fresh_catalog(client)
            start = time.perf_counter()
            result = batched_catalog.batch_create_partitions("status_count", inputs)
            batched = time.perf_counter() - start
            assert result.created == count
            assert len(batched_catalog.partitions("status_count")) == count
        finally:
            moto.stop()
    print(f"partitions registered:            {count}")
    print(f"CreatePartition one by one:       {one_by_one:8.3f} s ({count} calls)")
    print(f"BatchCreatePartition (≤100/call): {batched:8.3f} s ({-(-count // 100)} calls)")
    print(f"speed-up (baseline / batched):    {one_by_one / batched:8.1f}x")
    print(json.dumps({
        "partitions": count, "one_by_one_s": round(one_by_one, 3), "batched_s": round(batched, 3),
        "speedup": round(one_by_one / batched, 2),
    }))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
