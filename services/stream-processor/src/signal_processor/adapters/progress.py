"""A small durable key-value log for the Kinesis source's batch boundaries (local dir or S3).

Writes are create-if-absent, so when two attempts of the same read race, the first boundary wins
and every attempt reads exactly the same records.
"""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any, Protocol
from urllib.parse import urlparse

from signal_common.aws import error_code
from signal_processor.adapters.aws_clients import aws_client


class ProgressStore(Protocol):
    def get(self, key: str) -> dict[str, Any] | None: ...

    def put_if_absent(self, key: str, value: dict[str, Any]) -> dict[str, Any]: ...

    def put(self, key: str, value: dict[str, Any]) -> None: ...

    def delete_below(self, prefix: str, keep_from: int) -> None: ...


class LocalProgressStore:
    """JSON files under a local directory; atomic via rename / link."""

    def __init__(self, root: str) -> None:
        self.root = root

    def _path(self, key: str) -> str:
        return os.path.join(self.root, *key.split("/")) + ".json"

    def get(self, key: str) -> dict[str, Any] | None:
        try:
            with open(self._path(key)) as handle:
                return dict(json.load(handle))
        except FileNotFoundError:
            return None

    def _temp(self, path: str, value: dict[str, Any]) -> str:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=os.path.dirname(path), suffix=".tmp")
        with os.fdopen(fd, "w") as handle:
            json.dump(value, handle)
            handle.flush()
            os.fsync(handle.fileno())
        return temp

    def put_if_absent(self, key: str, value: dict[str, Any]) -> dict[str, Any]:
        """Store `value` unless the key exists; return what is stored now."""
        path = self._path(key)
        temp = self._temp(path, value)
        try:
            os.link(temp, path)  # fails if the key exists: first writer wins
        except FileExistsError:
            pass
        finally:
            os.unlink(temp)
        stored = self.get(key)
        assert stored is not None
        return stored

    def put(self, key: str, value: dict[str, Any]) -> None:
        path = self._path(key)
        os.replace(self._temp(path, value), path)

    def delete_below(self, prefix: str, keep_from: int) -> None:
        """Remove numbered entries `prefix/<n>` (files or folders) with n < keep_from."""
        folder = os.path.join(self.root, *prefix.split("/"))
        if not os.path.isdir(folder):
            return
        for name in os.listdir(folder):
            stem = name.removesuffix(".json")
            if stem.isdigit() and int(stem) < keep_from:
                target = os.path.join(folder, name)
                if os.path.isdir(target):
                    for child in os.listdir(target):
                        os.unlink(os.path.join(target, child))
                    os.rmdir(target)
                else:
                    os.unlink(target)


class S3ProgressStore:
    """JSON objects under an s3:// prefix; create-if-absent via S3 conditional writes."""

    def __init__(self, uri: str, *, region: str, endpoint_url: str | None) -> None:
        parsed = urlparse(uri)
        self.bucket, self.prefix = parsed.netloc, parsed.path.strip("/")
        self.region, self.endpoint_url = region, endpoint_url

    def _client(self) -> Any:
        return aws_client("s3", self.region, self.endpoint_url)

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}.json".lstrip("/")

    def get(self, key: str) -> dict[str, Any] | None:
        client = self._client()
        try:
            body = client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"].read()
        except client.exceptions.NoSuchKey:
            return None
        return dict(json.loads(body))

    def put_if_absent(self, key: str, value: dict[str, Any]) -> dict[str, Any]:
        from botocore.exceptions import ClientError

        try:
            self._client().put_object(
                Bucket=self.bucket, Key=self._key(key), Body=json.dumps(value), IfNoneMatch="*"
            )
        except ClientError as exc:
            if error_code(exc) not in ("PreconditionFailed", "ConditionalRequestConflict"):
                raise
        stored = self.get(key)
        assert stored is not None
        return stored

    def put(self, key: str, value: dict[str, Any]) -> None:
        self._client().put_object(Bucket=self.bucket, Key=self._key(key), Body=json.dumps(value))

    def delete_below(self, prefix: str, keep_from: int) -> None:
        client = self._client()
        paginator = client.get_paginator("list_objects_v2")
        base = self._key(prefix).removesuffix(".json") + "/"
        for page in paginator.paginate(Bucket=self.bucket, Prefix=base):
            for item in page.get("Contents", []):
                first = item["Key"][len(base) :].split("/")[0].removesuffix(".json")
                if first.isdigit() and int(first) < keep_from:
                    client.delete_object(Bucket=self.bucket, Key=item["Key"])


def progress_store(
    location: str, *, region: str = "us-east-1", endpoint_url: str | None = None
) -> ProgressStore:
    """The store for a `file://`, plain-path or `s3://` location."""
    parsed = urlparse(location)
    if parsed.scheme == "s3":
        return S3ProgressStore(location, region=region, endpoint_url=endpoint_url)
    if parsed.scheme in ("", "file"):
        return LocalProgressStore(parsed.path if parsed.scheme else location)
    raise ValueError(f"unsupported progress location {location!r} (use a path, file:// or s3://)")
