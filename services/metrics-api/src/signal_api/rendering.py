"""JSON bodies: results rendered once (a cache hit costs no serialization) and error bodies."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from fastapi.responses import JSONResponse

from signal_api.core import service


def _json_default(value: object) -> str:
    if isinstance(value, dt.datetime):
        return value.isoformat().replace("+00:00", "Z")
    raise TypeError(f"cannot encode {type(value).__name__}")


class Rendered:
    """A result and its JSON encodings: a cache hit costs no serialization at all.

    Encoded with the C json encoder rather than through the pydantic models (which document the
    responses, and which the tests validate every response against): a 24 h / 1m series has
    ~25k rows and model validation would double the uncached latency.
    """

    def __init__(self, payload: dict[str, Any]) -> None:
        self.payload = {("from" if k == "from_" else k): v for k, v in payload.items()}
        self._bodies: dict[tuple[bool, bool], bytes] = {}

    def body(self, stale: bool, cached: bool) -> bytes:
        """The response body with its `meta` marker."""
        key = (stale, cached)
        if key not in self._bodies:
            document = {**self.payload, "meta": {"stale": stale, "cached": cached}}
            # Pre-encoded values (service.EncodedJson) are written as placeholders, then spliced.
            fragments: dict[str, str] = {}
            for name, value in document.items():
                if isinstance(value, service.EncodedJson):
                    marker = f"\x00fragment:{name}\x00"
                    fragments[json.dumps(marker)] = value.text
                    document[name] = marker
            text = json.dumps(
                document, default=_json_default, separators=(",", ":"), allow_nan=False
            )
            for marker, fragment in fragments.items():
                text = text.replace(marker, fragment, 1)
            self._bodies[key] = text.encode()
        return self._bodies[key]


def error_response(
    status: int,
    code: str,
    message: str,
    *,
    parameter: str | None = None,
    allowed: list[str] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """The API's error JSON: {"error": {"code", "message", "parameter"?, "allowed"?}}."""
    body: dict[str, Any] = {"code": code, "message": message}
    if parameter is not None:
        body["parameter"] = parameter
    if allowed is not None:
        body["allowed"] = allowed
    return JSONResponse({"error": body}, status_code=status, headers=headers)
