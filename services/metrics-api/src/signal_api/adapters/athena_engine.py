"""AthenaEngine: runs the Trino queries on Amazon Athena through pyathena.

Queries go to a workgroup with an optional output location, parameters travel as Athena
execution parameters (never spliced into the text), status is polled at a set interval, and a
query still running at the timeout is cancelled (StopQueryExecution) before EngineTimeoutError.

A query that ends FAILED because part of the lake could not be read (S3 denied a prefix or an
object, an object is missing or corrupt) becomes LakeUnreadableError naming the S3 path, as the
DuckDB engine names an unreadable partition: the answer is a 503, never a partial 200.
"""

from __future__ import annotations

import concurrent.futures
import logging
import re
from typing import Any

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from pyathena import connect
from pyathena.async_cursor import AsyncCursor
from pyathena.error import Error as PyAthenaError
from pyathena.util import RetryConfig

from signal_api.adapters.engine import Row
from signal_api.core.errors import (
    EngineError,
    EngineTimeoutError,
    EngineUnavailableError,
    LakeUnreadableError,
)
from signal_api.core.queries import Param, Query
from signal_common.aws import error_code

log = logging.getLogger(__name__)


def athena_literal(value: Param) -> str:
    """An execution parameter in Athena's literal syntax (strings quoted, quotes doubled)."""
    if isinstance(value, bool):
        raise TypeError("boolean parameters are not used by the API's queries")
    if isinstance(value, int | float):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


_TRANSIENT_CODES = frozenset(
    {"ThrottlingException", "TooManyRequestsException", "InternalServerException"}
)

# What a FAILED query's StateChangeReason says when the lake could not be read, by kind (the
# documents each comes from are cited in tests/test_athena.py). Checked after the transient
# ones: HIVE_CANNOT_OPEN_SPLIT is also how S3 throttling ("Slow Down") surfaces.
_TRANSIENT_REASON = re.compile(r"reduce your request rate|slow ?down|throttl", re.IGNORECASE)
_UNREADABLE_REASONS = (
    ("access denied", re.compile(r"access denied|permission denied|AccessDenied", re.I)),
    ("missing", re.compile(r"NoSuch(Key|Bucket)|HIVE_FILE_NOT_FOUND|specified key does", re.I)),
    ("corrupt", re.compile(r"HIVE_CURSOR_ERROR|HIVE_BAD_DATA|not a valid Parquet|corrupt", re.I)),
    ("not opened", re.compile(r"HIVE_CANNOT_OPEN_SPLIT", re.I)),
)
_S3_PATH = re.compile(r"s3a?://[^\s()'\"]+")
_SYSTEM_ERROR = 1  # AthenaError.ErrorCategory: 1 SYSTEM, 2 USER, 3 OTHER


def failed_query_error(
    name: str, reason: str | None, *, category: int | None = None, retryable: bool | None = None
) -> EngineError:
    """The engine error of a query Athena ended FAILED, from its StateChangeReason and
    AthenaError fields: LakeUnreadableError naming the S3 path when part of the lake could not
    be read; EngineUnavailableError when resubmitting may succeed (a system error, throttling);
    else EngineError."""
    text = reason or ""
    if retryable or _TRANSIENT_REASON.search(text):
        return EngineUnavailableError(f"Athena could not run query {name} now (transient)")
    for kind, pattern in _UNREADABLE_REASONS:
        if pattern.search(text):
            paths = list(dict.fromkeys(p.rstrip(".,;:") for p in _S3_PATH.findall(text)))
            where = ", ".join(paths) if paths else "its S3 data"
            return LakeUnreadableError(f"query {name} cannot read {where} ({kind})")
    if category == _SYSTEM_ERROR:
        return EngineUnavailableError(f"Athena failed to run query {name} (system error)")
    return EngineError(f"query {name} failed")


def _unavailable(exc: BaseException) -> bool:
    """Whether an error means Athena could not be reached (vs. a query that failed)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, BotoCoreError) and not isinstance(seen, ClientError):
            return True
        if isinstance(seen, ClientError):
            return error_code(seen) in _TRANSIENT_CODES
        seen = seen.__cause__ or seen.__context__
    return False


class AthenaEngine:
    """Queries the Glue catalog's tables with Athena."""

    name = "athena"

    def __init__(
        self,
        *,
        database: str,
        workgroup: str,
        region: str,
        output_location: str | None = None,
        endpoint_url: str | None = None,
        poll_interval_s: float = 0.2,
        timeout_s: float = 20.0,
    ) -> None:
        self._timeout_s = timeout_s
        kwargs: dict[str, Any] = {}
        if endpoint_url:
            kwargs["endpoint_url"] = endpoint_url
        self._conn = connect(
            schema_name=database,
            work_group=workgroup,
            s3_staging_dir=output_location or "",
            region_name=region,
            poll_interval=poll_interval_s,
            cursor_class=AsyncCursor,
            # Fail fast: the API has a cache with stale-on-error; retrying here only delays.
            config=Config(retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=3),
            retry_config=RetryConfig(attempt=2, max_delay=1),
            **kwargs,
        )
        self._cursor: AsyncCursor = self._conn.cursor()

    def run(self, query: Query) -> list[Row]:
        """Rows of a query; EngineTimeoutError (after cancelling) if it runs past the timeout."""
        params = [athena_literal(p) for p in query.params]
        try:
            query_id, future = self._cursor.execute(query.sql, params or None, paramstyle="qmark")
        except PyAthenaError as exc:
            raise self._mapped(query, exc) from exc
        try:
            result_set = future.result(timeout=self._timeout_s)
        except concurrent.futures.TimeoutError as exc:
            self._cancel(query, query_id)
            raise EngineTimeoutError(
                f"query {query.name} exceeded {self._timeout_s:g} s and was cancelled"
            ) from exc
        except PyAthenaError as exc:
            raise self._mapped(query, exc) from exc
        if result_set.state != "SUCCEEDED":
            log.error(
                "athena query did not succeed",
                extra={
                    "query": query.name,
                    "query_id": query_id,
                    "state": result_set.state,
                    "reason": result_set.state_change_reason,
                    "error_category": result_set.error_category,
                    "error_type": result_set.error_type,
                },
            )
            if result_set.state == "FAILED":
                raise failed_query_error(
                    query.name,
                    result_set.state_change_reason or result_set.error_message,
                    category=result_set.error_category,
                    retryable=result_set.retryable,
                )
            raise EngineError(f"query {query.name} ended {result_set.state}")
        try:
            names = [d[0] for d in result_set.description or ()]
            return [dict(zip(names, row, strict=True)) for row in result_set.fetchall()]
        except PyAthenaError as exc:
            raise self._mapped(query, exc) from exc

    def _cancel(self, query: Query, query_id: str) -> None:
        try:
            self._cursor.cancel(query_id).result(timeout=10)
            log.warning("athena query cancelled", extra={"query": query.name, "query_id": query_id})
        except (PyAthenaError, concurrent.futures.TimeoutError) as exc:
            log.error(
                "cancelling athena query failed",
                extra={"query": query.name, "query_id": query_id, "error": str(exc)},
            )

    @staticmethod
    def _mapped(query: Query, exc: PyAthenaError) -> EngineError:
        log.error("athena call failed", extra={"query": query.name, "error": str(exc)})
        if _unavailable(exc):
            return EngineUnavailableError(f"Athena unreachable while running {query.name}")
        return EngineError(f"query {query.name} failed")

    def close(self) -> None:
        """Close the cursor and connection."""
        self._cursor.close()
        self._conn.close()
