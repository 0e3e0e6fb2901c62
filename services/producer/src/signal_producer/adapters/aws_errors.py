"""What AWS said when it refused a call, in the shape the producer's one-sentence errors use."""

from __future__ import annotations

from botocore.exceptions import ClientError


def error_of(exc: ClientError) -> tuple[str, str]:
    """The error code and message of a refused call, the message on one line (≤ 200 chars)."""
    error = exc.response.get("Error", {})
    return str(error.get("Code", "")), " ".join(str(error.get("Message", "")).split())[:200]
