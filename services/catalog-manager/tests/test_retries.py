"""Retries of the clients `wiring` builds, against a real HTTP server speaking Glue's protocol.

The server answers the first requests with the failures under test, then with success, so the
figures checked (requests received, the outcome) come from botocore's real retry handling.
"""

from __future__ import annotations

import pytest
from glue_http import FlakyGlue

from signal_catalog.errors import AwsUnavailableError
from signal_catalog.settings import CatalogSettings
from signal_catalog.wiring import catalog_from


def _settings(endpoint: str, **overrides: object) -> CatalogSettings:
    values: dict[str, object] = {
        "glue_endpoint_url": endpoint,
        "s3_endpoint_url": endpoint,
        "glue_database": "signal",
        "aws_region": "us-east-1",
        **overrides,
    }
    return CatalogSettings(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (500, "InternalServiceException"),
        (503, "ServiceUnavailableException"),
        (400, "ThrottlingException"),
    ],
)
def test_a_glue_5xx_or_throttling_is_retried_until_it_succeeds(
    flaky_glue: tuple[FlakyGlue, str], status: int, code: str
) -> None:
    state, endpoint = flaky_glue
    state.failures = [(status, code)] * 2
    catalog = catalog_from(_settings(endpoint, max_attempts=3))
    assert catalog.database_exists()
    assert state.requests == ["AWSGlue.GetDatabase"] * 3


def test_a_lasting_5xx_fails_after_max_attempts_with_one_line(
    flaky_glue: tuple[FlakyGlue, str],
) -> None:
    state, endpoint = flaky_glue
    state.failures = [(500, "InternalServiceException")] * 10
    catalog = catalog_from(_settings(endpoint, max_attempts=2))
    with pytest.raises(AwsUnavailableError) as caught:
        catalog.database_exists()
    assert len(state.requests) == 2
    line = caught.value.one_line()
    assert "InternalServiceException" in line
    assert "\n" not in line


def test_a_concurrent_modification_is_retried_by_the_catalog_itself(
    flaky_glue: tuple[FlakyGlue, str],
) -> None:
    state, endpoint = flaky_glue
    state.failures = [(400, "ConcurrentModificationException")] * 2
    catalog = catalog_from(_settings(endpoint, max_attempts=3, backoff_base_s=0.01))
    assert catalog.database_exists()
    assert len(state.requests) == 3
