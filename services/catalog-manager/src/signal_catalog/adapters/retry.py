"""AWS error translation, and backoff for the one conflict botocore does not retry.

Throttling, 5xx and connection errors are retried by botocore itself (its `standard` or
`adaptive` retry mode, configured in `wiring`). What botocore treats as final but is worth
retrying here is Glue's `ConcurrentModificationException`: another writer (a crawler, a second
`sync`, the partition Lambda) changed the same table at the same time; the call is correct and
succeeds once the other update is in.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import Any, TypeVar

from botocore.exceptions import (
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
)

from signal_catalog.errors import (
    AccessDeniedError,
    AwsUnavailableError,
    CatalogError,
    ThrottledError,
)
from signal_common.aws import backoff_s, error_code, error_message

log = logging.getLogger(__name__)
T = TypeVar("T")

# Throttling codes botocore retries; they reach us only once its attempts are spent.
THROTTLING_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "SlowDown",
    }
)
# Conflicts botocore does not retry (final to it) that are worth retrying with backoff here.
CONFLICT_CODES = frozenset({"ConcurrentModificationException"})
ACCESS_DENIED_CODES = frozenset(
    {
        "AccessDeniedException",
        "AccessDeniedError",
        "UnauthorizedOperation",
        "UnrecognizedClientException",
    }
)


def translate(exc: Exception, what: str) -> CatalogError:
    """A named, one-line CatalogError for an AWS failure while doing `what`."""
    if isinstance(exc, ClientError):
        code, message = error_code(exc), error_message(exc)
        if code in ACCESS_DENIED_CODES:
            return AccessDeniedError(
                f"access denied while {what} ({code}: {message})",
                hint="grant the role the Glue/S3 permission named above (see README, IAM)",
            )
        if code in THROTTLING_CODES or code in CONFLICT_CODES:
            return ThrottledError(
                f"AWS kept throttling while {what} ({code})",
                hint="retry later or raise SIGNAL_CATALOG_MAX_ATTEMPTS",
            )
        return AwsUnavailableError(f"AWS error while {what}: {code}: {message}")
    if isinstance(exc, NoCredentialsError):
        return AccessDeniedError(
            f"no AWS credentials while {what}",
            hint="configure credentials (AWS_PROFILE, env vars or an instance role)",
        )
    if isinstance(exc, EndpointConnectionError):
        return AwsUnavailableError(
            f"cannot reach the AWS endpoint while {what}: {exc}",
            hint="check SIGNAL_CATALOG_*_ENDPOINT_URL and the network",
        )
    return AwsUnavailableError(f"unexpected failure while {what}: {exc}")


def with_backoff(
    call: Callable[[], T],
    *,
    what: str,
    attempts: int = 6,
    base_s: float = 0.2,
    max_s: float = 10.0,
    sleep: Callable[[float], Any] = time.sleep,
    rng: random.Random | None = None,
) -> T:
    """Run `call`, retrying conflicts (CONFLICT_CODES) with full-jitter exponential backoff.

    Other ClientErrors propagate unchanged (callers handle e.g. EntityNotFound; botocore has
    already retried throttling and 5xx); a conflict that outlasts every attempt becomes
    `ThrottledError`.
    """
    rng = rng or random.Random()
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except ClientError as exc:
            if error_code(exc) not in CONFLICT_CODES:
                raise
            if attempt == attempts:
                raise translate(exc, what) from exc
            delay = backoff_s(attempt, base_s=base_s, cap_s=max_s, rng=rng)
            log.warning(
                "concurrent modification, backing off",
                extra={"what": what, "attempt": attempt, "delay_s": round(delay, 3)},
            )
            sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover
