"""The Glue Data Catalog: database, tables, partitions and crawlers, through one boto3 client."""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from signal_catalog.adapters.retry import translate, with_backoff
from signal_catalog.core.partitions import (
    MAX_PARTITIONS_PER_BATCH,
    Partition,
    chunks,
    partition_from_values,
)
from signal_catalog.errors import AwsUnavailableError, DatabaseMissingError, TableMissingError
from signal_common.aws import error_code

log = logging.getLogger(__name__)
T = TypeVar("T")

NOT_FOUND = "EntityNotFoundException"
ALREADY_EXISTS = "AlreadyExistsException"


@dataclass(frozen=True)
class RetryPolicy:
    """Backoff of calls refused by a concurrent modification (botocore retries the rest)."""

    attempts: int = 6
    base_s: float = 0.2
    max_s: float = 10.0


@dataclass(frozen=True)
class BatchResult:
    """Outcome of registering partitions: created, already present."""

    created: int
    already_present: int


class GlueCatalog:
    """One Glue database seen through a boto3 `glue` client."""

    def __init__(self, client: Any, database: str, *, retry: RetryPolicy | None = None) -> None:
        self.client = client
        self.database = database
        self.retry = retry or RetryPolicy()

    def _call(
        self, what: str, fn: Callable[..., T], *, expected: Collection[str] = (), **kwargs: Any
    ) -> T:
        """Call the client (conflicts retried with backoff); expected error codes propagate,
        others are translated."""
        try:
            return with_backoff(
                lambda: fn(**kwargs),
                what=what,
                attempts=self.retry.attempts,
                base_s=self.retry.base_s,
                max_s=self.retry.max_s,
            )
        except ClientError as exc:
            code = error_code(exc)
            if code in expected:
                raise
            if code == NOT_FOUND:
                if not self.database_exists():
                    raise self._missing_database() from exc
                raise TableMissingError(
                    f"not found while {what}", hint="run `signal-catalog sync` first"
                ) from exc
            raise translate(exc, what) from exc
        except BotoCoreError as exc:
            raise translate(exc, what) from exc

    def _missing_database(self) -> DatabaseMissingError:
        return DatabaseMissingError(
            f"Glue database {self.database!r} does not exist",
            hint="run `signal-catalog sync` to create it, or set SIGNAL_CATALOG_GLUE_DATABASE",
        )

    # --- database -------------------------------------------------------------------------
    def database_exists(self) -> bool:
        """Whether the database exists."""
        try:
            self._call(
                f"reading database {self.database}",
                self.client.get_database,
                expected={NOT_FOUND},
                Name=self.database,
            )
        except ClientError:
            return False
        return True

    def require_database(self) -> None:
        """Raise DatabaseMissingError unless the database exists."""
        if not self.database_exists():
            raise self._missing_database()

    def ensure_database(self, description: str) -> bool:
        """Create the database if it is missing; True when it was created."""
        if self.database_exists():
            return False
        try:
            self._call(
                f"creating database {self.database}",
                self.client.create_database,
                expected={ALREADY_EXISTS},
                DatabaseInput={"Name": self.database, "Description": description},
            )
        except ClientError:
            return False  # created concurrently: same outcome
        return True

    # --- tables ---------------------------------------------------------------------------
    def get_table(self, name: str) -> dict[str, Any] | None:
        """A table's definition, or None if it does not exist."""
        try:
            response = self._call(
                f"reading table {self.database}.{name}",
                self.client.get_table,
                expected={NOT_FOUND},
                DatabaseName=self.database,
                Name=name,
            )
        except ClientError as exc:
            if not self.database_exists():
                raise self._missing_database() from exc
            return None
        return dict(response["Table"])

    def table_names(self) -> list[str]:
        """Names of every table in the database."""
        names: list[str] = []
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"DatabaseName": self.database}
            if token:
                kwargs["NextToken"] = token
            page = self._call(
                f"listing tables of {self.database}", self.client.get_tables, **kwargs
            )
            names += [t["Name"] for t in page.get("TableList", [])]
            token = page.get("NextToken")
            if not token:
                return names

    def create_table(self, table_input: dict[str, Any]) -> None:
        """Create a table."""
        self._call(
            f"creating table {self.database}.{table_input['Name']}",
            self.client.create_table,
            DatabaseName=self.database,
            TableInput=table_input,
        )

    def update_table(self, table_input: dict[str, Any]) -> None:
        """Replace a table's definition."""
        self._call(
            f"updating table {self.database}.{table_input['Name']}",
            self.client.update_table,
            DatabaseName=self.database,
            TableInput=table_input,
        )

    # --- partitions -----------------------------------------------------------------------
    def partitions(self, table: str) -> set[Partition]:
        """Every (dt, hour) partition of a table in the catalog."""
        found: set[Partition] = set()
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"DatabaseName": self.database, "TableName": table}
            if token:
                kwargs["NextToken"] = token
            page = self._call(
                f"listing partitions of {self.database}.{table}",
                self.client.get_partitions,
                **kwargs,
            )
            for p in page.get("Partitions", []):
                partition = partition_from_values(p.get("Values", []))
                if partition is not None:
                    found.add(partition)
            token = page.get("NextToken")
            if not token:
                return found

    def batch_create_partitions(self, table: str, inputs: Sequence[dict[str, Any]]) -> BatchResult:
        """Create partitions in calls of at most 100; AlreadyExists counts as present."""
        created = already = 0
        for chunk in chunks(inputs, MAX_PARTITIONS_PER_BATCH):
            response = self._call(
                f"registering {len(chunk)} partitions of {self.database}.{table}",
                self.client.batch_create_partition,
                DatabaseName=self.database,
                TableName=table,
                PartitionInputList=list(chunk),
            )
            errors = response.get("Errors", [])
            exists = [e for e in errors if e["ErrorDetail"]["ErrorCode"] == ALREADY_EXISTS]
            others = [e for e in errors if e["ErrorDetail"]["ErrorCode"] != ALREADY_EXISTS]
            if others:
                first = others[0]
                raise AwsUnavailableError(
                    f"Glue refused {len(others)} partition(s) of {self.database}.{table}: "
                    f"{first['PartitionValues']}: {first['ErrorDetail']['ErrorCode']}: "
                    f"{first['ErrorDetail'].get('ErrorMessage', '')}"
                )
            already += len(exists)
            created += len(chunk) - len(exists)
        return BatchResult(created, already)

    # --- crawlers -------------------------------------------------------------------------
    def get_crawler(self, name: str) -> dict[str, Any] | None:
        """A crawler's definition and state, or None if it does not exist."""
        try:
            return dict(
                self._call(
                    f"reading crawler {name}",
                    self.client.get_crawler,
                    expected={NOT_FOUND},
                    Name=name,
                )["Crawler"]
            )
        except ClientError:
            return None

    def create_crawler(self, definition: dict[str, Any]) -> None:
        """Create a crawler."""
        self._call(
            f"creating crawler {definition['Name']}", self.client.create_crawler, **definition
        )

    def update_crawler(self, definition: dict[str, Any]) -> None:
        """Update a crawler's definition."""
        self._call(
            f"updating crawler {definition['Name']}", self.client.update_crawler, **definition
        )

    def start_crawler(self, name: str) -> bool:
        """Start a crawler; False when it was already running."""
        try:
            self._call(
                f"starting crawler {name}",
                self.client.start_crawler,
                expected={"CrawlerRunningException"},
                Name=name,
            )
        except ClientError:
            return False
        return True

    def latest_crawl(self, name: str) -> dict[str, Any] | None:
        """The most recent crawl of a crawler (ListCrawls), or None if it never ran."""
        try:
            crawls: list[dict[str, Any]] = self._call(
                f"listing crawls of {name}",
                self.client.list_crawls,
                expected={NOT_FOUND, "EntityNotFoundException"},
                CrawlerName=name,
            ).get("Crawls", [])
        except ClientError:
            return None
        if not crawls:
            return None
        latest = max(crawls, key=lambda crawl: crawl.get("StartTime") or 0)
        return dict(latest)
