"""Exactly-once Parquet output per micro-batch, readable by Athena and DuckDB.

Readers of the lake do not read Spark's `_spark_metadata`, so a replayed batch must leave
exactly one copy of its output on its own. Every checkpoint is a *run* with its own id
(`r-<12 hex>`, kept in the source's progress log), so batch ids, which restart at 0 with a new
checkpoint, never collide across runs. Every file of a batch is named
`<table>/dt=…/hour=…/part-<run>-<batch>-<k>.snappy.parquet` (`signal_common.commits`), fixed
names, and a manifest lists the batch's files of each table
(`_batches/<run>/<table>/<batch>.json`); a replay of the batch deletes the files its manifest
lists that the new attempt does not write, and overwrites the rest, so no file of a failed
attempt survives. After every table, the run's head (`_commits/<run>.json`, a
`signal_common.commits.CommitHead`) records the batch as committed, with the stream positions
where reading continues: a new checkpoint starts there, and first deletes what an earlier run
wrote for batches it never committed (their records are read again).

Two writers share those rules:
- the records (`events`, `quarantine`) are written by the executors, each Spark task its own
  partition's rows (`write_partition`, `k` = the Spark partition id, one file per dt/hour).
  Before its files, a task stores what it is about to write, an *intent*
  (`_batches/<run>/_tasks/<batch>/<partition>-<unique>.json`), so even a task attempt that dies
  mid-write, a speculative one or one of an earlier driver attempt leaves a record of its files.
  Once every task has succeeded, the driver writes the tables' manifests from the file lists the
  tasks returned (`record_files`), then deletes every file an intent lists that is not among
  them (`delete_strays`), commits, and deletes the intents (`clear_intents`). Attempts of one
  partition read the same records (the source replays a batch identically, dedup restores the
  same state, the shuffle hashes the same keys), so they write the same names with the same
  rows: a late attempt can only rewrite an identical file;
- the small tables (the KPI partials the driver merged, `pipeline_batches`) are written by the
  driver (`write_arrow`): manifest first, then the files.
Only the driver commits, after every table's manifest. Each file appears atomically (rename
locally, a single PUT on S3). `LakeWriter` and the storages hold only names and settings, so
they pickle to the executors, where the S3 client is made on first use (one per process).

Every row is stamped with its batch's lake-wide `commit_seq` (the run's base plus the batch id
plus one; the base is the highest sequence committed before the run began) and
`compacted = false`, the lineage that lets compaction replace files under running readers
(signal_common.lake).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import re
import uuid
from collections.abc import Iterable, Mapping
from typing import Any, Protocol
from urllib.parse import urlparse

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from signal_common.commits import (
    CommitHead,
    decode_commit_head,
    encode_commit_head,
    part_file_name,
)
from signal_common.lake import COMMITS_DIR
from signal_processor.adapters.aws_clients import aws_client

log = logging.getLogger(__name__)


class Storage(Protocol):
    def delete(self, uri: str) -> None: ...

    def read_bytes(self, uri: str) -> bytes | None: ...

    def read_json(self, uri: str) -> Any | None: ...

    def write_json(self, uri: str, value: Any) -> None: ...

    def write_bytes(self, uri: str, data: bytes) -> None: ...

    def list(self, prefix: str) -> list[str]: ...


def _path(uri: str) -> str:
    parsed = urlparse(uri)
    return parsed.path if parsed.scheme == "file" else uri


class LocalStorage:
    """The lake on a local filesystem (`file://` URIs or paths)."""

    def delete(self, uri: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(_path(uri))

    def read_bytes(self, uri: str) -> bytes | None:
        try:
            with open(_path(uri), "rb") as handle:
                return handle.read()
        except FileNotFoundError:
            return None

    def read_json(self, uri: str) -> Any | None:
        data = self.read_bytes(uri)
        return None if data is None else json.loads(data)

    def list(self, prefix: str) -> list[str]:
        """URIs of the files under `prefix` (recursively; temporary files left out)."""
        base = _path(prefix).rstrip("/")
        scheme = "file://" if prefix.startswith("file:") else ""
        found = []
        for folder, _, names in os.walk(base):
            found += [f"{scheme}{folder}/{n}" for n in names if not n.startswith(".")]
        return sorted(found)

    def write_json(self, uri: str, value: Any) -> None:
        self.write_bytes(uri, json.dumps(value).encode())

    def write_bytes(self, uri: str, data: bytes) -> None:
        path = _path(uri)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        # a dot-prefixed temporary name: readers globbing *.parquet never see a partial file
        temp = os.path.join(os.path.dirname(path), "." + os.path.basename(path) + ".tmp")
        with open(temp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)


class S3Storage:
    """The lake on S3 (`s3://bucket/prefix`), through boto3."""

    def __init__(self, *, region: str, endpoint_url: str | None) -> None:
        self.region, self.endpoint_url = region, endpoint_url

    def _client(self) -> Any:
        return aws_client("s3", self.region, self.endpoint_url)

    @staticmethod
    def _split(uri: str) -> tuple[str, str]:
        parsed = urlparse(uri)
        return parsed.netloc, parsed.path.lstrip("/")

    def delete(self, uri: str) -> None:
        bucket, key = self._split(uri)
        self._client().delete_object(Bucket=bucket, Key=key)

    def read_bytes(self, uri: str) -> bytes | None:
        bucket, key = self._split(uri)
        client = self._client()
        try:
            return bytes(client.get_object(Bucket=bucket, Key=key)["Body"].read())
        except client.exceptions.NoSuchKey:
            return None

    def read_json(self, uri: str) -> Any | None:
        data = self.read_bytes(uri)
        return None if data is None else json.loads(data)

    def list(self, prefix: str) -> list[str]:
        """URIs of the objects under `prefix`."""
        bucket, key = self._split(prefix.rstrip("/") + "/")
        pages = self._client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key)
        return sorted(
            f"s3://{bucket}/{item['Key']}" for page in pages for item in page.get("Contents", [])
        )

    def write_json(self, uri: str, value: Any) -> None:
        self.write_bytes(uri, json.dumps(value).encode())

    def write_bytes(self, uri: str, data: bytes) -> None:
        bucket, key = self._split(uri)
        self._client().put_object(Bucket=bucket, Key=key, Body=data)


def storage_for(
    lake_root: str, *, region: str = "us-east-1", endpoint_url: str | None = None
) -> Storage:
    """The storage backend of a lake root URI."""
    scheme = urlparse(lake_root).scheme
    if scheme == "s3":
        return S3Storage(region=region, endpoint_url=endpoint_url)
    if scheme in ("", "file"):
        return LocalStorage()
    raise ValueError(f"unsupported lake root {lake_root!r} (use file:// or s3://)")


RUN_ID = re.compile(r"^r-[0-9a-f]{12}$")
TASKS_DIR = "_tasks"
"""Under `_batches/<run>/`: the intents of the batches' tasks (not a table)."""


def new_run_id() -> str:
    """A fresh run id (one per checkpoint)."""
    return f"r-{uuid.uuid4().hex[:12]}"


def lake_uri(lake_root: str) -> str:
    """The lake root as a URI (a plain path becomes file://)."""
    root = lake_root.rstrip("/")
    return f"file://{os.path.abspath(root)}" if urlparse(root).scheme == "" else root


class LakeWriter:
    """Writes one batch's rows of a table, replacing any earlier attempt of the same batch."""

    def __init__(self, lake_root: str, storage: Storage, *, run_id: str, seq_base: int = 0) -> None:
        self.root = lake_uri(lake_root)
        self.storage = storage
        self.run_id = run_id
        self.seq_base = seq_base

    def seq(self, batch_id: int) -> int:
        """The lake-wide commit sequence of this run's batch `batch_id` (the same on replay)."""
        return self.seq_base + batch_id + 1

    def manifest_uri(self, table: str, batch_id: int) -> str:
        return f"{self.root}/_batches/{self.run_id}/{table}/{batch_id:012d}.json"

    def commit(self, batch_id: int, resume: dict[str, Any]) -> None:
        """Record batch `batch_id` as committed (after all its tables), with its end positions."""
        head = CommitHead(
            self.run_id,
            batch_id,
            dt.datetime.now(dt.UTC).isoformat(),
            resume,
            self.seq(batch_id),
        )
        self.storage.write_bytes(
            f"{self.root}/{COMMITS_DIR}/{self.run_id}.json", encode_commit_head(head)
        )

    def write_arrow(self, data: pa.Table | None, table: str, batch_id: int) -> list[str]:
        """Write an Arrow table (None: nothing) as the files of batch `batch_id` of `table`."""
        parts = partition_tables(with_lineage(data, self.seq(batch_id))) if data is not None else []
        final = [
            self.part_uri(table, day, hour, batch_id, k) for k, ((day, hour), _) in enumerate(parts)
        ]
        manifest = self.manifest_uri(table, batch_id)
        previous = self.storage.read_json(manifest)
        if previous is not None:
            stale = [uri for uri in previous["files"] if uri not in final]
            for uri in stale:
                self.storage.delete(uri)
            log.info(
                "replacing the output of a replayed batch",
                extra={"table": table, "batch_id": batch_id, "stale_files": len(stale)},
            )
        self.storage.write_json(manifest, {"batch_id": batch_id, "files": final})
        for uri, (_, rows) in zip(final, parts, strict=True):
            self.storage.write_bytes(uri, parquet_bytes(rows))
        return final

    def part_uri(self, table: str, day: str, hour: int, batch_id: int, k: int) -> str:
        """The file `k` of batch `batch_id` of `table` in partition (`day`, `hour`)."""
        return f"{self.root}/{table}/dt={day}/hour={hour}/" + part_file_name(
            self.run_id, batch_id, k
        )

    def intents_uri(self, batch_id: int) -> str:
        """Where the tasks of batch `batch_id` record the files they are about to write."""
        return f"{self.root}/_batches/{self.run_id}/{TASKS_DIR}/{batch_id:012d}"

    def write_partition(
        self, tables: Mapping[str, pa.Table | None], batch_id: int, partition: int
    ) -> tuple[str | None, dict[str, list[str]]]:
        """On an executor: write one Spark partition's rows of batch `batch_id`, per table (None:
        no rows), as files named by `partition`. Their intent is stored first.

        Returns the intent's URI (None if the partition wrote nothing) and the files per table.
        """
        seq = self.seq(batch_id)
        planned = {
            table: [
                (self.part_uri(table, day, hour, batch_id, partition), rows)
                for (day, hour), rows in partition_tables(with_lineage(data, seq))
            ]
            for table, data in tables.items()
            if data is not None
        }
        files = {table: [uri for uri, _ in parts] for table, parts in planned.items()}
        every = sorted(uri for uris in files.values() for uri in uris)
        if not every:
            return None, files
        intent = f"{self.intents_uri(batch_id)}/{partition:05d}-{uuid.uuid4().hex[:12]}.json"
        self.storage.write_json(intent, {"batch_id": batch_id, "files": every})
        for parts in planned.values():
            for uri, rows in parts:
                self.storage.write_bytes(uri, parquet_bytes(rows))
        return intent, files

    def record_files(self, table: str, batch_id: int, files: Iterable[str]) -> None:
        """On the driver, once every task succeeded: the manifest of the files the tasks wrote
        for batch `batch_id` of `table`; what an earlier attempt's manifest listed besides
        them is deleted."""
        final = sorted(files)
        manifest = self.manifest_uri(table, batch_id)
        previous = self.storage.read_json(manifest)
        self.storage.write_json(manifest, {"batch_id": batch_id, "files": final})
        if previous is not None:
            stale = set(previous["files"]).difference(final)
            for uri in sorted(stale):
                self.storage.delete(uri)
            log.info(
                "replacing the output of a replayed batch",
                extra={"table": table, "batch_id": batch_id, "stale_files": len(stale)},
            )

    def delete_strays(self, batch_id: int, keep: Iterable[str], *, known: Iterable[str]) -> int:
        """After `record_files`, before the commit: delete every file a task attempt of batch
        `batch_id` recorded that is not in `keep` (attempts that failed, were speculative or
        belong to an earlier run of the batch), and their intents. The intents in `known`, the
        successful tasks', list only kept files and are left for `clear_intents`. Returns the
        number of files deleted."""
        kept, skip, deleted = set(keep), set(known), 0
        for intent in self.storage.list(self.intents_uri(batch_id)):
            if intent in skip:
                continue
            listed = self.storage.read_json(intent) or {"files": []}
            for uri in listed["files"]:
                if uri not in kept:
                    self.storage.delete(uri)
                    deleted += 1
            self.storage.delete(intent)
        if deleted:
            log.warning(
                "deleted the files of task attempts that did not count",
                extra={"run_id": self.run_id, "batch_id": batch_id, "files": deleted},
            )
        return deleted

    def clear_intents(self, intents: Iterable[str]) -> None:
        """After the commit: delete the successful tasks' intents (their files are in the
        manifests; one a crash leaves behind is deleted by the next run's start)."""
        for intent in intents:
            self.storage.delete(intent)


def run_heads(storage: Storage, lake_root: str) -> list[CommitHead]:
    """Every run's head in the lake, oldest commit first."""
    heads = []
    for uri in storage.list(f"{lake_uri(lake_root)}/{COMMITS_DIR}"):
        data = storage.read_bytes(uri) if uri.endswith(".json") else None
        if data is not None:
            heads.append(decode_commit_head(data))
    return sorted(heads, key=lambda h: h.committed_at)


def discard_uncommitted(storage: Storage, lake_root: str, *, current_run: str) -> int:
    """Delete what other runs wrote for batches they never committed; the number of files.

    Their records are read again by the run that continues from the lake's last commit, so
    leaving the files would count them twice. Only for a run that has just started: it is the
    only writer of the lake (see the runbook: one processor per lake).
    """
    root = lake_uri(lake_root)
    committed = {h.run_id: h.batch_id for h in run_heads(storage, root)}
    deleted = 0
    for manifest in storage.list(f"{root}/_batches"):
        # _batches/<run>/<table>/<batch>.json or _batches/<run>/_tasks/<batch>/<intent>.json
        parts = manifest[len(root) :].strip("/").split("/")
        intent = len(parts) == 5 and parts[2] == TASKS_DIR
        if not (len(parts) == 4 or intent) or not RUN_ID.match(parts[1]):
            continue
        if parts[1] == current_run:
            continue
        batch_id = int(parts[3].removesuffix(".json"))
        if batch_id <= committed.get(parts[1], -1):
            if intent:  # left by a crash after the commit: its files are in the manifests
                storage.delete(manifest)
            continue
        listed = storage.read_json(manifest) or {"files": []}
        for uri in listed["files"]:
            storage.delete(uri)
            deleted += 1
        storage.delete(manifest)
        log.warning(
            "deleted the output of a batch an earlier run never committed",
            extra={"run_id": parts[1], "table": parts[2], "batch_id": batch_id},
        )
    return deleted


def with_lineage(data: pa.Table, seq: int) -> pa.Table:
    """`data` with the lineage columns of a batch's own rows: its commit_seq, not compacted."""
    n = data.num_rows
    return data.append_column(
        pa.field("commit_seq", pa.int64(), nullable=False), pa.repeat(pa.scalar(seq, pa.int64()), n)
    ).append_column(pa.field("compacted", pa.bool_(), nullable=False), pa.repeat(False, n))


def partition_tables(data: pa.Table) -> list[tuple[tuple[str, int], pa.Table]]:
    """Split rows by (dt, hour), dropping those columns (their values live in the path)."""
    if data.num_rows == 0:
        return []
    keys = data.select(["dt", "hour"]).group_by(["dt", "hour"], use_threads=False).aggregate([])
    body = data.drop_columns(["dt", "hour"])
    parts = []
    for day, hour in sorted(zip(keys["dt"].to_pylist(), keys["hour"].to_pylist(), strict=True)):
        mask = pc.and_(pc.equal(data["dt"], day), pc.equal(data["hour"], hour))
        parts.append(((day, hour), body.filter(mask)))
    return parts


def parquet_bytes(rows: pa.Table) -> bytes:
    """Snappy Parquet with micro-second UTC timestamps (what Athena and DuckDB read)."""
    sink = pa.BufferOutputStream()
    pq.write_table(rows, sink, compression="snappy", coerce_timestamps="us")
    return bytes(sink.getvalue().to_pybytes())
