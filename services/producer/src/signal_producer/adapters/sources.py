"""Where a replayed mobile_logs.csv comes from: a local file, or an S3 object read as a stream.

An S3 object is read line by line without being downloaded first (an ECS task has little disk,
a legacy log can be large). A read that breaks part-way resumes with a ranged GET from the
first byte not yet handed out, pinned to the object's ETag so a file replaced meanwhile fails
instead of mixing two files. Every failure a user can fix becomes a SourceError: one sentence.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Protocol
from urllib.parse import urlsplit

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    IncompleteReadError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
    ReadTimeoutError,
    ResponseStreamingError,
)

from signal_common.aws import backoff_s, error_code, error_message

log = logging.getLogger(__name__)

# Errors of a read that broke part-way: worth a resumed GET from where it stopped.
_BROKEN_READ = (
    ResponseStreamingError,
    IncompleteReadError,
    ReadTimeoutError,
    ConnectionClosedError,
    EndpointConnectionError,
)
# The header of a legacy CSV is far shorter than this; the first ranged GET reads at most it.
_HEADER_BYTES = 64 * 1024


class SourceError(Exception):
    """The CSV cannot be read; told to the user as one sentence (no traceback)."""


class _EmptyObjectError(Exception):
    """A ranged GET of an empty object (S3 refuses it as an unsatisfiable range)."""


class Source(Protocol):
    """A legacy CSV to replay."""

    @property
    def name(self) -> str:
        """The file's base name: it goes into every event id, so local and S3 replays agree."""
        ...

    @property
    def display(self) -> str:
        """How messages name the source (a path or an s3:// URL)."""
        ...

    def header_line(self) -> str:
        """The first line of the file ('' if it is empty)."""
        ...

    def count_rows(self) -> int | None:
        """Data rows (lines after the header), or None when counting would mean a second read."""
        ...

    @contextmanager
    def lines(self) -> Iterator[Iterator[str]]:
        """The file's lines, line endings kept (what csv.reader expects)."""
        ...


def _local_errors(path: Path) -> Callable[[OSError | UnicodeDecodeError], SourceError]:
    def translate(exc: OSError | UnicodeDecodeError) -> SourceError:
        if isinstance(exc, FileNotFoundError):
            return SourceError(f"{path} does not exist")
        if isinstance(exc, IsADirectoryError):
            return SourceError(f"{path} is a directory, not a mobile_logs.csv")
        if isinstance(exc, PermissionError):
            return SourceError(f"cannot read {path}: permission denied")
        if isinstance(exc, UnicodeDecodeError):
            return SourceError(f"{path} is not UTF-8 text (is it a mobile_logs.csv?)")
        return SourceError(f"cannot read {path}: {exc.strerror or exc}")

    return translate


@dataclass(frozen=True)
class LocalSource:
    """A CSV on the local file system."""

    path: Path

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def display(self) -> str:
        return str(self.path)

    def header_line(self) -> str:
        try:
            with self.path.open(encoding="utf-8", newline="") as handle:
                return handle.readline()
        except (OSError, UnicodeDecodeError) as exc:
            raise _local_errors(self.path)(exc) from None

    def count_rows(self) -> int | None:
        try:
            with self.path.open(encoding="utf-8", newline="") as handle:
                return max(sum(1 for _ in handle) - 1, 0)
        except (OSError, UnicodeDecodeError) as exc:
            raise _local_errors(self.path)(exc) from None

    @contextmanager
    def lines(self) -> Iterator[Iterator[str]]:
        translate = _local_errors(self.path)
        try:
            handle = self.path.open(encoding="utf-8", newline="")
        except OSError as exc:
            raise translate(exc) from None

        def read() -> Iterator[str]:
            try:
                yield from handle
            except UnicodeDecodeError as exc:
                raise translate(exc) from None

        with handle:
            yield read()


@dataclass(frozen=True)
class S3Location:
    """An object named by an s3://bucket/key URL."""

    bucket: str
    key: str

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def parse_s3_url(text: str) -> S3Location:
    """The bucket and key of `s3://bucket/key`; SourceError if either is missing."""
    parts = urlsplit(text)
    key = parts.path.lstrip("/")
    if parts.scheme != "s3" or not parts.netloc or not key or key.endswith("/"):
        raise SourceError(f"{text!r} is not an S3 object URL; expected s3://BUCKET/KEY.csv")
    return S3Location(parts.netloc, key)


class S3Source:
    """A CSV in S3, read through `client` (a boto3 S3 client)."""

    def __init__(
        self,
        client: Any,
        location: S3Location,
        *,
        where: str,
        attempts: int = 5,
        base_backoff_s: float = 0.5,
        chunk_bytes: int = 1024 * 1024,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client = client
        self.location = location
        self.where = where
        self.attempts = attempts
        self.base_backoff_s = base_backoff_s
        self.chunk_bytes = chunk_bytes
        self._sleep = sleep
        self._rng = random.Random()  # unseeded: the jitter only spreads resumed GETs
        self.resumed = 0  # ranged GETs after a broken read (for the summary and tests)

    @property
    def name(self) -> str:
        return PurePosixPath(self.location.key).name

    @property
    def display(self) -> str:
        return self.location.url

    def _get(self, **extra: str) -> dict[str, Any]:
        """GetObject of the location, with its errors as SourceError sentences."""
        url = self.location.url
        try:
            response: dict[str, Any] = self.client.get_object(
                Bucket=self.location.bucket, Key=self.location.key, **extra
            )
            return response
        except ClientError as exc:
            code, message = error_code(exc), error_message(exc)
            if code == "NoSuchKey":
                raise SourceError(f"{url} does not exist at {self.where}") from None
            if code == "NoSuchBucket":
                raise SourceError(
                    f"bucket {self.location.bucket!r} does not exist at {self.where}"
                ) from None
            if code in ("AccessDenied", "AccessDeniedException", "403"):
                # S3 also answers 403 for a missing key when the caller may not list the bucket
                raise SourceError(
                    f"access denied to {url} ({message or code}): either it does not exist or "
                    "the role may not s3:GetObject it"
                ) from None
            if code in ("PreconditionFailed", "412"):
                raise SourceError(
                    f"{url} was replaced while it was being read; replay it again"
                ) from None
            if code in ("InvalidRange", "416"):
                if extra.get("Range", "").startswith("bytes=0-"):
                    raise _EmptyObjectError from None  # S3 answers a range of an empty object so
                raise SourceError(f"{url} became shorter while it was being read") from None
            if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken"):
                raise SourceError(
                    f"{self.where} rejected the AWS credentials ({code}); check AWS_PROFILE or "
                    "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"
                ) from None
            raise SourceError(
                f"{self.where} refused GetObject of {url}: {code}: {message}"
            ) from None
        except (NoCredentialsError, PartialCredentialsError):
            raise SourceError(
                "no AWS credentials found; set AWS_PROFILE or AWS_ACCESS_KEY_ID/"
                "AWS_SECRET_ACCESS_KEY"
            ) from None
        except (EndpointConnectionError, ConnectTimeoutError):
            raise SourceError(
                f"cannot reach {self.where}; check SIGNAL_PRODUCER_S3_ENDPOINT_URL and that the "
                "endpoint is running"
            ) from None
        except BotoCoreError as exc:
            raise SourceError(f"cannot read {url} from {self.where}: {exc}") from None

    def header_line(self) -> str:
        try:
            body = self._get(Range=f"bytes=0-{_HEADER_BYTES - 1}")["Body"]
        except _EmptyObjectError:
            return ""
        try:
            head = body.read()
        except _BROKEN_READ as exc:
            raise SourceError(f"reading {self.display} failed: {exc}") from None
        finally:
            body.close()
        line = head.split(b"\n", 1)[0] + (b"\n" if b"\n" in head else b"")
        try:
            return line.decode("utf-8")
        except UnicodeDecodeError:
            raise SourceError(
                f"{self.display} is not UTF-8 text (is it a mobile_logs.csv?)"
            ) from None

    def count_rows(self) -> int | None:
        return None

    @contextmanager
    def lines(self) -> Iterator[Iterator[str]]:
        yield self._stream_lines()

    def _stream_lines(self) -> Iterator[str]:
        """Lines of the object; a broken read resumes at `offset` (bytes of lines handed out)."""
        offset = 0
        etag: str | None = None
        failures = 0
        while True:
            extra = {"Range": f"bytes={offset}-", "IfMatch": etag} if etag else {}
            response = self._get(**extra)
            etag = etag or str(response["ETag"])
            if offset and not response.get("ContentRange"):
                # an endpoint that ignores Range answers the whole object: skipping the lines
                # already handed out would need a second full read; refuse instead
                raise SourceError(f"{self.where} ignored the Range of a resumed read")
            body = response["Body"]
            pending = b""
            started_at = offset
            try:
                for chunk in body.iter_chunks(self.chunk_bytes):
                    pending += chunk
                    *complete, pending = pending.split(b"\n")
                    for raw in complete:
                        offset += len(raw) + 1
                        yield self._decode(raw + b"\n", offset)
            except _BROKEN_READ as exc:
                # only breaks without a line handed out in between count towards giving up
                failures = 1 if offset > started_at else failures + 1
                if failures >= self.attempts:
                    raise SourceError(
                        f"reading {self.display} broke {failures} times in a row at byte {offset} "
                        f"(last: {exc}); the lines before it were sent, replay it again to finish "
                        "(replayed rows keep their event ids, so the processor drops repeats)"
                    ) from None
                pause = backoff_s(
                    failures, base_s=self.base_backoff_s, cap_s=10.0, rng=self._rng, jitter="equal"
                )
                log.warning(
                    "S3 read broke; resuming",
                    extra={"source": self.display, "offset": offset, "error": str(exc)},
                )
                self.resumed += 1
                self._sleep(pause)
                continue
            finally:
                body.close()
            if pending:
                offset += len(pending)
                yield self._decode(pending, offset)
            return

    def _decode(self, raw: bytes, end: int) -> str:
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise SourceError(
                f"{self.display} is not UTF-8 text near byte {end - len(raw)} "
                "(is it a mobile_logs.csv?)"
            ) from None


def make_s3_client(*, region: str, endpoint_url: str | None) -> Any:
    """A boto3 S3 client (botocore's own retries for the calls; reads resume in S3Source)."""
    import boto3
    from botocore.config import Config

    config = Config(
        retries={"max_attempts": 5, "mode": "standard"}, connect_timeout=5, read_timeout=60
    )
    try:
        return boto3.client("s3", region_name=region, endpoint_url=endpoint_url, config=config)
    except ProfileNotFound as exc:
        raise SourceError(
            f"AWS profile {exc.kwargs.get('profile')!r} is not configured; fix AWS_PROFILE"
        ) from None
    except NoRegionError:
        raise SourceError("no AWS region; set SIGNAL_PRODUCER_AWS_REGION") from None
    except ValueError as exc:  # e.g. an endpoint URL that is not a URL
        raise SourceError(f"cannot create the S3 client: {exc}") from None
