"""What every service's AWS edge shares: reading a refused call's error, and jittered backoff.

Pure: it reads the `response` dict botocore's ClientError carries and imports no AWS library,
so a service's adapters use it without `libs/common` depending on boto3.
"""

from __future__ import annotations

import random
from typing import Any, Literal

Jitter = Literal["full", "equal"]


def _error(exc: BaseException) -> dict[str, Any]:
    response = getattr(exc, "response", None)
    error = response.get("Error", {}) if isinstance(response, dict) else {}
    return error if isinstance(error, dict) else {}


def error_code(exc: BaseException, default: str = "") -> str:
    """The AWS error code of a refused call (botocore's ClientError), or `default`."""
    return str(_error(exc).get("Code", default))


def error_message(exc: BaseException, *, limit: int | None = 200) -> str:
    """The refusal's message on one line, at most `limit` characters (None: unbounded).

    Some endpoints put HTML or stack traces in the message; a one-line error must stay one line.
    """
    message = " ".join(str(_error(exc).get("Message", "")).split())
    return message if limit is None else message[:limit]


def backoff_s(
    attempt: int, *, base_s: float, cap_s: float, rng: random.Random, jitter: Jitter = "full"
) -> float:
    """The sleep after failed attempt `attempt` (1-based): an exponential ceiling
    `min(cap_s, base_s * 2**(attempt-1))`, with full jitter (uniform in [0, ceiling]) or equal
    jitter (half the ceiling plus a uniform half), as AWS's Architecture Blog names them
    ("Exponential Backoff And Jitter", 2015)."""
    if attempt < 1:
        raise ValueError(f"attempt counts from 1, got {attempt}")
    ceiling = min(cap_s, base_s * 2 ** (attempt - 1))
    if jitter == "equal":
        return ceiling / 2 + rng.uniform(0.0, ceiling / 2)
    return rng.uniform(0.0, ceiling)
