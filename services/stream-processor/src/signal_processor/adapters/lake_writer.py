"""Exactly-once Parquet output per micro-batch, readable by Athena and DuckDB.

Readers of the lake do not read Spark's `_spark_metadata`, so a replayed batch must leave exactly
one copy of its output on its own. Each table's batch output is written by Spark to a staging
folder, then moved to `<table>/dt=…/hour=…/part-<batch>-<k>.snappy.parquet`. A manifest of the
final paths is stored first (`_batches/<table>/<batch>.json`); a replay of the batch deletes the
files its manifest lists before moving its own, so no file of a failed attempt survives.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
from typing import Any, Protocol
from urllib.parse import urlparse

from pyspark.sql import DataFrame

log = logging.getLogger(__name__)


class Storage(Protocol):
    def list_files(self, prefix_uri: str) -> list[str]: ...

    def move(self, src_uri: str, dst_uri: str) -> None: ...

    def delete(self, uri: str) -> None: ...

    def delete_tree(self, prefix_uri: str) -> None: ...

    def read_json(self, uri: str) -> Any | None: ...

    def write_json(self, uri: str, value: Any) -> None: ...


def _path(uri: str) -> str:
    parsed = urlparse(uri)
    return parsed.path if parsed.scheme == "file" else uri


class LocalStorage:
    """The lake on a local filesystem (`file://` URIs or paths)."""

    def list_files(self, prefix_uri: str) -> list[str]:
        root = _path(prefix_uri)
        found = []
        for folder, _, files in os.walk(root):
            found.extend(os.path.join(folder, f) for f in files)
        return sorted(f"file://{p}" for p in found)

    def move(self, src_uri: str, dst_uri: str) -> None:
        dst = _path(dst_uri)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        os.replace(_path(src_uri), dst)

    def delete(self, uri: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(_path(uri))

    def delete_tree(self, prefix_uri: str) -> None:
        shutil.rmtree(_path(prefix_uri), ignore_errors=True)

    def read_json(self, uri: str) -> Any | None:
        try:
            with open(_path(uri)) as handle:
                return json.load(handle)
        except FileNotFoundError:
            return None

    def write_json(self, uri: str, value: Any) -> None:
        path = _path(uri)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path + ".tmp", "w") as handle:
            json.dump(value, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(path + ".tmp", path)


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

    def list_files(self, prefix_uri: str) -> list[str]:
        bucket, prefix = self._split(prefix_uri)
        paginator = self._client().get_paginator("list_objects_v2")
        keys = [
            item["Key"]
            for page in paginator.paginate(Bucket=bucket, Prefix=prefix.rstrip("/") + "/")
            for item in page.get("Contents", [])
        ]
        return sorted(f"s3://{bucket}/{k}" for k in keys)

    def move(self, src_uri: str, dst_uri: str) -> None:
        src_bucket, src_key = self._split(src_uri)
        dst_bucket, dst_key = self._split(dst_uri)
        client = self._client()
        client.copy_object(
            Bucket=dst_bucket, Key=dst_key, CopySource={"Bucket": src_bucket, "Key": src_key}
        )
        client.delete_object(Bucket=src_bucket, Key=src_key)

    def delete(self, uri: str) -> None:
        bucket, key = self._split(uri)
        self._client().delete_object(Bucket=bucket, Key=key)

    def delete_tree(self, prefix_uri: str) -> None:
        for uri in self.list_files(prefix_uri):
            self.delete(uri)

    def read_json(self, uri: str) -> Any | None:
        bucket, key = self._split(uri)
        client = self._client()
        try:
            return json.loads(client.get_object(Bucket=bucket, Key=key)["Body"].read())
        except client.exceptions.NoSuchKey:
            return None

    def write_json(self, uri: str, value: Any) -> None:
        bucket, key = self._split(uri)
        self._client().put_object(Bucket=bucket, Key=key, Body=json.dumps(value).encode())


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

    def write(self, df: DataFrame, table: str, batch_id: int, *, files: int = 1) -> list[str]:
        """Write `df` (with dt/hour columns) as table files of batch `batch_id`; return them."""
        staging = f"{self.root}/_staging/{table}/{batch_id:012d}"
        self.storage.delete_tree(staging)
        df.coalesce(files).write.mode("overwrite").option("compression", "snappy").partitionBy(
            "dt", "hour"
        ).parquet(staging)
        staged = [u for u in self.storage.list_files(staging) if u.endswith(".parquet")]
        final: list[str] = []
        for k, src in enumerate(staged):
            relative = src[len(staging) + 1 :]
            partition_dir = relative.rsplit("/", 1)[0]
            final.append(
                f"{self.root}/{table}/{partition_dir}/part-{batch_id:012d}-{k:05d}.snappy.parquet"
            )
        manifest = self.manifest_uri(table, batch_id)
        previous = self.storage.read_json(manifest)
        if previous is not None:
            stale = [uri for uri in previous["files"] if uri not in final]
            for uri in stale:
                self.storage.delete(uri)
            log.info(
                "replaced output of a replayed batch",
                extra={"table": table, "batch_id": batch_id, "stale_files": len(stale)},
            )
        self.storage.write_json(manifest, {"batch_id": batch_id, "files": final})
        for src, dst in zip(staged, final, strict=True):
            self.storage.move(src, dst)
        self.storage.delete_tree(staging)
        return final
