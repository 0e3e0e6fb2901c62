"""JSON bodies: results rendered once (a cache hit costs no serialization) and error bodies."""

from __future__ import annotations

import datetime as dt
import json
import sys
from typing import Any

from fastapi import Response
from fastapi.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from signal_api.core import service


def _json_default(value: object) -> str:
    if isinstance(value, dt.datetime):
        return value.isoformat().replace("+00:00", "Z")
    raise TypeError(f"cannot encode {type(value).__name__}")


# The start of the `meta` object closing every result body, one constant per (stale, cached),
# spliced at send time before the entry's own meta fields: an entry keeps one encoding whatever
# way it is served.
_META_HEADS: dict[tuple[bool, bool], bytes] = {
    (stale, cached): b',"meta":'
    + json.dumps({"stale": stale, "cached": cached}, separators=(",", ":")).encode()[:-1]
    for stale in (False, True)
    for cached in (False, True)
}


def _encode_value(value: object) -> str:
    if isinstance(value, service.EncodedJson):
        return value.text
    return json.dumps(value, default=_json_default, separators=(",", ":"), allow_nan=False)


class Rendered:
    """A result encoded once, as JSON without its `meta` marker and closing brace (`head`), and
    the fields of its `meta` computed with it (`meta`: the JSON members, without braces): a
    cache hit costs no serialization, keeps the meta of the computation it serves, and the
    cache holds one representation per entry.

    Encoded with the C json encoder rather than through the pydantic models (which document the
    responses, and which the tests validate every response against): a 24 h / 1m series has
    ~25k rows and model validation would double the uncached latency.
    """

    __slots__ = ("head", "meta")

    def __init__(self, head: bytes, meta: bytes = b"") -> None:
        self.head = head
        self.meta = meta

    @classmethod
    def encode(cls, payload: dict[str, Any], meta: dict[str, Any] | None = None) -> Rendered:
        """The payload encoded (blocking: callers run it in a worker thread for large ones).

        Each top-level value is encoded on its own and joined, so a pre-encoded value
        (service.EncodedJson) is copied once, never searched and replaced."""
        parts = [
            f"{json.dumps('from' if name == 'from_' else name)}:{_encode_value(value)}"
            for name, value in payload.items()
        ]
        members = b""
        if meta:
            members = b"," + _encode_value(meta).encode()[1:-1]
        return cls(("{" + ",".join(parts)).encode(), members)

    @property
    def nbytes(self) -> int:
        """Bytes the encoding takes in memory."""
        return sys.getsizeof(self.head) + sys.getsizeof(self.meta)

    def tail(self, stale: bool, cached: bool) -> bytes:
        """The `meta` object and the closing brace (a few hundred bytes)."""
        return _META_HEADS[(stale, cached)] + self.meta + b"}}"

    def body(self, stale: bool, cached: bool) -> bytes:
        """The whole response body with its `meta` (a copy: tests and small bodies)."""
        return self.head + self.tail(stale, cached)

    def response(self, stale: bool, cached: bool) -> Response:
        """The response, sent as the encoding then its meta (no copy of the encoding)."""
        return SplicedJsonResponse(self.head, self.tail(stale, cached))


class SplicedJsonResponse(Response):
    """A 200 JSON response whose body is sent in two parts, never joined in memory."""

    media_type = "application/json"

    def __init__(self, head: bytes, tail: bytes) -> None:
        # not super().__init__: it would render (copy) a single body
        self.status_code = 200
        self.background = None
        self._parts = (head, tail)
        self.raw_headers = [
            (b"content-length", str(len(head) + len(tail)).encode("latin-1")),
            (b"content-type", b"application/json"),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        head, tail = self._parts
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        await send({"type": "http.response.body", "body": head, "more_body": True})
        await send({"type": "http.response.body", "body": tail})


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
