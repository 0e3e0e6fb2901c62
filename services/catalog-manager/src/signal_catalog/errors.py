"""Named failures of the catalog manager; each renders as one line: what is wrong, what to do."""

from __future__ import annotations


class CatalogError(Exception):
    """An expected failure: the CLI prints `message` (and `hint`) on one line, no traceback."""

    exit_code = 4

    def __init__(self, message: str, *, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def one_line(self) -> str:
        """The error as a single line for humans."""
        return f"{self.message} — {self.hint}" if self.hint else self.message


class AccessDeniedError(CatalogError):
    """The AWS principal lacks a permission."""


class DatabaseMissingError(CatalogError):
    """The Glue database does not exist."""


class TableMissingError(CatalogError):
    """A Glue table does not exist."""


class ThrottledError(CatalogError):
    """AWS kept throttling after every retry."""


class AwsUnavailableError(CatalogError):
    """An AWS endpoint could not be reached or failed unexpectedly."""


class LakePathMissingError(CatalogError):
    """The lake root (or a table's directory) does not exist."""


class CrawlerTimeoutError(CatalogError):
    """Crawlers did not finish within the timeout."""

    exit_code = 5


class ConfigurationError(CatalogError):
    """A setting is missing or contradictory."""

    exit_code = 2
