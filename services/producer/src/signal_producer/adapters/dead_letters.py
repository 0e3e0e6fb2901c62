"""Where a run's dead letters end up: a local file, or an S3 object written when the run ends.

A producer in an ECS task has only its ephemeral disk, which goes with the task. So a
dead-letter destination may be `s3://BUCKET/KEY.jsonl`, or a prefix `s3://BUCKET/PREFIX/` that
gets one object per run (`<stream>-<UTC time>-<random>.jsonl`). The run spools its dead
letters to a local temporary file and uploads that file when it ends, only if it holds any.
An upload that fails leaves the records in the spool file, and the run says where they are.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from boto3.exceptions import S3UploadFailedError
from botocore.exceptions import BotoCoreError, ClientError

from signal_common.aws import error_code, error_message
from signal_producer.adapters.sources import S3Location

log = logging.getLogger(__name__)


class DeadLetterTargetError(Exception):
    """The dead-letter destination is not usable; told to the user as one sentence."""


def dead_letter_location(text: str, *, stream: str, now: dt.datetime) -> S3Location:
    """The object named by an s3:// destination: the key itself, or for a prefix ending in '/'
    a new key under it naming the stream and the run's start (so runs never overwrite)."""
    parts = urlsplit(text)
    prefix = parts.path.lstrip("/")
    if parts.scheme != "s3" or not parts.netloc or parts.query or parts.fragment:
        raise DeadLetterTargetError(
            f"{text!r} is not an S3 dead-letter destination; expected s3://BUCKET/KEY.jsonl "
            "or s3://BUCKET/PREFIX/"
        )
    if prefix and not prefix.endswith("/"):
        return S3Location(parts.netloc, prefix)
    stamp = now.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    return S3Location(parts.netloc, f"{prefix}{stream}-{stamp}-{secrets.token_hex(4)}.jsonl")


@dataclass
class DeadLetters:
    """One run's dead-letter destination. `spool` is the file the run writes; `finish` moves it
    to S3 when the destination is there. `location` then names where the records are, and
    `problem` says why they are not where they were meant to go (None when they are)."""

    spool: Path
    upload_to: S3Location | None = None
    client: Any = None
    where: str = ""
    problem: str | None = None  # set by `finish` when the upload failed

    @property
    def location(self) -> str:
        """Where the records are: the S3 object, or the spool file if they never got there."""
        return self.upload_to.url if self.upload_to and not self.problem else str(self.spool)

    @classmethod
    def local(cls, path: Path) -> DeadLetters:
        """Dead letters in a local file (created on the first one)."""
        return cls(spool=path)

    @classmethod
    def to_s3(cls, location: S3Location, *, client: Any, where: str) -> DeadLetters:
        """Dead letters spooled to a temporary file and uploaded to `location` by `finish`."""
        handle, name = tempfile.mkstemp(prefix="signal-producer-dead-letter-", suffix=".jsonl")
        os.close(handle)
        return cls(spool=Path(name), upload_to=location, client=client, where=where)

    def finish(self, count: int) -> None:
        """After the run: upload the spool file if it holds any dead letter, then remove it; on a
        failed upload keep it and say so in `problem`."""
        if self.upload_to is None:
            return
        if count == 0:
            self.spool.unlink(missing_ok=True)
            return
        url = self.upload_to.url
        try:
            self.client.upload_file(
                str(self.spool),
                self.upload_to.bucket,
                self.upload_to.key,
                ExtraArgs={"ContentType": "application/x-ndjson"},
            )
        except (S3UploadFailedError, ClientError, BotoCoreError, OSError) as exc:
            reason = _reason(exc)
            self.problem = (
                f"could not upload the dead letters to {url} at {self.where} ({reason}); "
                f"they are in {self.spool}"
            )
            log.error("%s", self.problem)
            return
        self.spool.unlink(missing_ok=True)
        log.info("dead letters uploaded", extra={"count": count, "location": url})


def _reason(exc: BaseException) -> str:
    """S3's error code and message where S3 answered (an upload failure wraps S3's answer),
    else the error's own text; one line."""
    cause = exc.__cause__ or exc.__context__ if isinstance(exc, S3UploadFailedError) else exc
    if isinstance(cause, ClientError):
        return f"{error_code(cause)}: {error_message(cause)}"
    return " ".join(str(exc).split())[:300]
