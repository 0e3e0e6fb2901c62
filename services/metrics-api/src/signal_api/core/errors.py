"""Named domain errors of the Metrics API; the app maps each to one HTTP status."""

from __future__ import annotations

from collections.abc import Sequence


class ApiError(Exception):
    """Base of every error the API reports to clients."""

    status_code = 500
    code = "internal_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidParameterError(ApiError):
    """A query parameter has a bad value (422)."""

    status_code = 422
    code = "invalid_parameter"

    def __init__(
        self, parameter: str, message: str, *, allowed: Sequence[str] | None = None
    ) -> None:
        super().__init__(message)
        self.parameter = parameter
        self.allowed = list(allowed) if allowed is not None else None


class EngineError(ApiError):
    """The query engine failed to answer (503)."""

    status_code = 503
    code = "engine_error"


class EngineUnavailableError(EngineError):
    """The query engine cannot be reached (503)."""

    code = "engine_unavailable"


class LakeUnreadableError(EngineError):
    """Part of the lake a query needs cannot be read (503), so any answer would be partial: the
    message names what could not be read (a table, partition or file, relative to the lake)."""

    code = "lake_unreadable"


class EngineTimeoutError(EngineError):
    """The query ran longer than the timeout and was cancelled (504)."""

    status_code = 504
    code = "engine_timeout"


class ResultTooLargeError(ApiError):
    """The answer would exceed the response cap; the message says how to narrow it (422)."""

    status_code = 422
    code = "result_too_large"


class NotReadyError(ApiError):
    """Readiness is withdrawn: recent data queries failed in a row (503)."""

    status_code = 503
    code = "not_ready"
