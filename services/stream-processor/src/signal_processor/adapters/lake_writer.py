"""Exactly-once Parquet output per micro-batch, readable by Athena and DuckDB.

Readers of the lake do not read Spark's `_spark_metadata`, so a replayed batch must leave exactly
one copy of its output on its own. A batch's rows of a table (Arrow, bounded by the source's
max records per batch) are written from the driver as
`<table>/dt=…/hour=…/part-<batch>-<k>.snappy.parquet` (one file per partition, fixed names).
A manifest of those paths is stored first (`_batches/<table>/<batch>.json`); a replay of the
batch deletes the files its manifest lists that the new attempt does not write, and overwrites
the rest, so no file of a failed attempt survives.
Each file appears atomically (rename locally, a single PUT on S3). Writing from the driver costs
far less than a Spark write job per table for micro-batch sized data.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from typing import Any, Protocol
from urllib.parse import urlparse

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

log = logging.getLogger(__name__)


class Storage(Protocol):
    def delete(self, uri: str) -> None: ...

    def read_json(self, uri: str) -> Any | None: ...

    def write_json(self, uri: str, value: Any) -> None: ...

    def write_bytes(self, uri: str, data: bytes) -> None: ...


def _path(uri: str) -> str:
    parsed = urlparse(uri)
    return parsed.path if parsed.scheme == "file" else uri


class LocalStorage:
    """The lake on a local filesystem (`file://` URIs or paths)."""

    def delete(self, uri: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(_path(uri))

    def read_json(self, uri: str) -> Any | None:
        try:
            with open(_path(uri)) as handle:
                return json.load(handle)
        except FileNotFoundError:
            return None

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
        import boto3

        return boto3.client("s3", region_name=self.region, endpoint_url=self.endpoint_url)

    @staticmethod
    def _split(uri: str) -> tuple[str, str]:
        parsed = urlparse(uri)
        return parsed.netloc, parsed.path.lstrip("/")

    def delete(self, uri: str) -> None:
        bucket, key = self._split(uri)
        self._client().delete_object(Bucket=bucket, Key=key)

    def read_json(self, uri: str) -> Any | None:
        bucket, key = self._split(uri)
        client = self._client()
        try:
            return json.loads(client.get_object(Bucket=bucket, Key=key)["Body"].read())
        except client.exceptions.NoSuchKey:
            return None

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


class LakeWriter:
    """Writes one batch's rows of a table, replacing any earlier attempt of the same batch."""

    def __init__(self, lake_root: str, storage: Storage) -> None:
        self.root = lake_root.rstrip("/")
        if urlparse(self.root).scheme == "":
            self.root = f"file://{os.path.abspath(self.root)}"
        self.storage = storage

    def manifest_uri(self, table: str, batch_id: int) -> str:
        return f"{self.root}/_batches/{table}/{batch_id:012d}.json"

    def write_arrow(self, data: pa.Table | None, table: str, batch_id: int) -> list[str]:
        """Write an Arrow table (None: nothing) as the files of batch `batch_id` of `table`."""
        parts = partition_tables(data) if data is not None else []
        final = [
            f"{self.root}/{table}/dt={day}/hour={hour}/part-{batch_id:012d}-{k:05d}.snappy.parquet"
            for k, ((day, hour), _) in enumerate(parts)
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
