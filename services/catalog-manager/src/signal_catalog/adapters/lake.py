"""The lake as a place to list partitions, read Parquet footers and (for compaction) read,
write and delete data files: a directory or S3."""

from __future__ import annotations

import datetime as dt
import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

import pyarrow as pa
import pyarrow.parquet as pq
from botocore.exceptions import BotoCoreError, ClientError

from signal_catalog.adapters.retry import translate
from signal_catalog.core.compaction import LakeFile
from signal_catalog.core.partitions import Partition, is_data_file, parse_dt_dir, parse_hour_dir
from signal_catalog.errors import LakePathMissingError
from signal_common.aws import error_code
from signal_common.lake import COMMITS_DIR, partition_path


class Lake(Protocol):
    """What the catalog manager needs from the lake."""

    root: str

    def check(self) -> None:
        """Raise LakePathMissingError unless the lake root exists."""

    def partitions(self, table: str) -> set[Partition]:
        """(dt, hour) partitions of a table that hold at least one data file."""

    def data_files(self, table: str, *, limit: int) -> list[str]:
        """Up to `limit` data file URIs of a table, newest partitions first."""

    def read_schema(self, uri: str) -> pa.Schema:
        """The Arrow schema in a Parquet file's footer."""

    def partition_files(self, table: str, partition: Partition) -> list[LakeFile]:
        """The data files of one partition, with when each was written."""

    def read_table(self, uri: str) -> pa.Table:
        """A Parquet data file's rows."""

    def write_file(self, uri: str, data: bytes) -> None:
        """Write a file so that readers see all of it or nothing (rename; one S3 PUT)."""

    def delete(self, uri: str) -> None:
        """Delete a file (no error if it is already gone)."""

    def commit_heads(self) -> list[bytes]:
        """The stream processor's run heads (`_commits/<run>.json`) as stored
        (signal_common.commits)."""


def _missing_root(root: str) -> LakePathMissingError:
    return LakePathMissingError(
        f"lake root {root} does not exist",
        hint="check SIGNAL_CATALOG_LAKE_ROOT, or start the stream processor so it writes the lake",
    )


class LocalLake:
    """A lake in a local directory (`file://` root), laid out like the S3 one."""

    def __init__(self, root: str) -> None:
        self.root = root.rstrip("/")
        parsed = urlparse(root)
        self.path = Path(parsed.path if parsed.scheme == "file" else root)

    def check(self) -> None:
        """Raise LakePathMissingError unless the root directory exists."""
        if not self.path.is_dir():
            raise _missing_root(self.root)

    def _partition_dirs(self, table: str) -> list[tuple[Partition, Path]]:
        self.check()
        found: list[tuple[Partition, Path]] = []
        table_dir = self.path / table
        if not table_dir.is_dir():
            return found
        for dt_entry in os.scandir(table_dir):
            dt_value = parse_dt_dir(dt_entry.name)
            if dt_value is None or not dt_entry.is_dir():
                continue
            for hour_entry in os.scandir(dt_entry.path):
                hour = parse_hour_dir(hour_entry.name)
                if hour is None or not hour_entry.is_dir():
                    continue
                found.append((Partition(dt_value, hour), Path(hour_entry.path)))
        return sorted(found, reverse=True)

    def partitions(self, table: str) -> set[Partition]:
        """Partitions whose directory holds at least one Parquet data file."""
        return {
            p
            for p, directory in self._partition_dirs(table)
            if any(is_data_file(name) for name in os.listdir(directory))
        }

    def data_files(self, table: str, *, limit: int) -> list[str]:
        """Up to `limit` data files of a table, newest partitions first."""
        files: list[str] = []
        for _, directory in self._partition_dirs(table):
            for name in sorted(os.listdir(directory), reverse=True):
                if is_data_file(name):
                    files.append(str(directory / name))
                    if len(files) >= limit:
                        return files
        return files

    def read_schema(self, uri: str) -> pa.Schema:
        """The Arrow schema of a local Parquet file."""
        return pq.read_schema(uri)

    def partition_files(self, table: str, partition: Partition) -> list[LakeFile]:
        """Data files of one partition directory (none if it does not exist)."""
        directory = self.path / partition_path(table, partition.dt, partition.hour)
        if not directory.is_dir():
            return []
        return sorted(
            (
                LakeFile(
                    str(directory / e.name),
                    e.name,
                    dt.datetime.fromtimestamp(e.stat().st_mtime, dt.UTC),
                )
                for e in os.scandir(directory)
                if is_data_file(e.name)
            ),
            key=lambda f: f.name,
        )

    def read_table(self, uri: str) -> pa.Table:
        """A local Parquet file's rows."""
        return pq.read_table(uri)

    def write_file(self, uri: str, data: bytes) -> None:
        """Write under a hidden temporary name, fsync, then rename into place."""
        path = Path(uri)
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = path.with_name(f".{path.name}.tmp")
        with open(temp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)

    def delete(self, uri: str) -> None:
        """Delete a local file (gone already is fine)."""
        Path(uri).unlink(missing_ok=True)

    def commit_heads(self) -> list[bytes]:
        """Every `_commits/*.json` head under the lake root."""
        directory = self.path / COMMITS_DIR
        if not directory.is_dir():
            return []
        return [p.read_bytes() for p in sorted(directory.glob("*.json")) if p.is_file()]


class S3Lake:
    """A lake under `s3://bucket/prefix`, listed with ListObjectsV2 and a `/` delimiter."""

    def __init__(self, client: Any, root: str) -> None:
        parsed = urlparse(root)
        if parsed.scheme != "s3" or not parsed.netloc:
            raise ValueError(f"{root!r} is not an s3://bucket/prefix URI")
        self.client = client
        self.root = root.rstrip("/")
        self.bucket = parsed.netloc
        self.prefix = parsed.path.strip("/")

    def _key(self, *parts: str) -> str:
        return "/".join(p for p in (self.prefix, *parts) if p)

    def _call(self, what: str, fn: Any, **kwargs: Any) -> Any:
        try:
            return fn(**kwargs)  # botocore retries throttling (SlowDown), 5xx and resets
        except ClientError as exc:
            if error_code(exc) in ("NoSuchBucket", "404", "NotFound"):
                raise _missing_root(self.root) from exc
            raise translate(exc, what) from exc
        except BotoCoreError as exc:
            raise translate(exc, what) from exc

    def check(self) -> None:
        """Raise LakePathMissingError unless the bucket exists."""
        self._call(f"checking bucket {self.bucket}", self.client.head_bucket, Bucket=self.bucket)

    def _pages(self, prefix: str) -> Iterator[dict[str, Any]]:
        """ListObjectsV2 pages of a prefix, one level deep (`/` delimiter)."""
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix, "Delimiter": "/"}
            if token:
                kwargs["ContinuationToken"] = token
            page = self._call(
                f"listing s3://{self.bucket}/{prefix}", self.client.list_objects_v2, **kwargs
            )
            yield page
            if not page.get("IsTruncated"):
                return
            token = page.get("NextContinuationToken")

    def _common_prefixes(self, prefix: str) -> list[str]:
        """Immediate 'sub-directories' of a prefix (ending in '/')."""
        return [
            cp["Prefix"][len(prefix) :]
            for page in self._pages(prefix)
            for cp in page.get("CommonPrefixes", [])
        ]

    def _objects(self, prefix: str) -> list[str]:
        return [o["Key"] for o in self._object_infos(prefix)]

    def _partition_prefixes(self, table: str) -> list[tuple[Partition, str]]:
        found: list[tuple[Partition, str]] = []
        table_prefix = self._key(table) + "/"
        for dt_name in self._common_prefixes(table_prefix):
            dt_value = parse_dt_dir(dt_name)
            if dt_value is None:
                continue
            for hour_name in self._common_prefixes(table_prefix + dt_name):
                hour = parse_hour_dir(hour_name)
                if hour is not None:
                    found.append((Partition(dt_value, hour), table_prefix + dt_name + hour_name))
        return sorted(found, reverse=True)

    def partitions(self, table: str) -> set[Partition]:
        """Partitions holding at least one data file (not just markers or temporary files)."""
        return {
            p
            for p, prefix in self._partition_prefixes(table)
            if any(is_data_file(k) for k in self._objects(prefix))
        }

    def data_files(self, table: str, *, limit: int) -> list[str]:
        """Up to `limit` data object URIs of a table, newest partitions first."""
        files: list[str] = []
        for _, prefix in self._partition_prefixes(table):
            for key in sorted(self._objects(prefix), reverse=True):
                if is_data_file(key):
                    files.append(f"s3://{self.bucket}/{key}")
                    if len(files) >= limit:
                        return files
        return files

    def read_schema(self, uri: str) -> pa.Schema:
        """The Arrow schema of a Parquet object (read whole: sampled lake files are small)."""
        parsed = urlparse(uri)
        body = self._call(
            f"reading {uri}", self.client.get_object, Bucket=parsed.netloc, Key=parsed.path[1:]
        )["Body"].read()
        return pq.read_schema(io.BytesIO(body))

    def _object_infos(self, prefix: str) -> list[dict[str, Any]]:
        return [o for page in self._pages(prefix) for o in page.get("Contents", [])]

    def partition_files(self, table: str, partition: Partition) -> list[LakeFile]:
        """Data objects of one partition prefix, with their LastModified."""
        prefix = self._key(partition_path(table, partition.dt, partition.hour)) + "/"
        return sorted(
            (
                LakeFile(
                    f"s3://{self.bucket}/{o['Key']}",
                    o["Key"].rsplit("/", 1)[-1],
                    o["LastModified"].astimezone(dt.UTC),
                )
                for o in self._object_infos(prefix)
                if is_data_file(o["Key"])
            ),
            key=lambda f: f.name,
        )

    def _get(self, uri: str) -> bytes:
        parsed = urlparse(uri)
        body = self._call(
            f"reading {uri}", self.client.get_object, Bucket=parsed.netloc, Key=parsed.path[1:]
        )["Body"].read()
        return bytes(body)

    def read_table(self, uri: str) -> pa.Table:
        """A Parquet object's rows (read whole: a partition's files fit in memory)."""
        return pq.read_table(io.BytesIO(self._get(uri)))

    def write_file(self, uri: str, data: bytes) -> None:
        """One PUT: S3 shows the whole object or none of it."""
        parsed = urlparse(uri)
        self._call(
            f"writing {uri}",
            self.client.put_object,
            Bucket=parsed.netloc,
            Key=parsed.path[1:],
            Body=data,
        )

    def delete(self, uri: str) -> None:
        """DeleteObject (S3 answers the same for a key that is already gone)."""
        parsed = urlparse(uri)
        self._call(
            f"deleting {uri}", self.client.delete_object, Bucket=parsed.netloc, Key=parsed.path[1:]
        )

    def commit_heads(self) -> list[bytes]:
        """Every `_commits/*.json` head under the lake prefix."""
        prefix = self._key(COMMITS_DIR) + "/"
        keys = [o["Key"] for o in self._object_infos(prefix) if o["Key"].endswith(".json")]
        return [self._get(f"s3://{self.bucket}/{k}") for k in sorted(keys)]


def open_lake(root: str, *, s3_client_factory: Any) -> Lake:
    """The lake at `root`: S3Lake for s3:// roots (client made on demand), LocalLake otherwise."""
    if root.startswith("s3://"):
        return S3Lake(s3_client_factory(), root)
    return LocalLake(root)
