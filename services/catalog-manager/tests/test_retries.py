"""Retries of the clients `wiring` builds, against a real HTTP server speaking Glue's protocol.

The server answers the first requests with the failures under test, then with success, so the
figures checked (requests received, the outcome) come from botocore's real retry handling.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from signal_catalog.errors import AwsUnavailableError
from signal_catalog.settings import CatalogSettings
from signal_catalog.wiring import catalog_from


@dataclass
class FlakyGlue:
    """Answers GetDatabase with `failures` (status, error code) in turn, then with success."""

    failures: list[tuple[int, str]] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)


@pytest.fixture
def flaky_glue(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[FlakyGlue, str]]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_EC2_METADATA_DISABLED": "true",
    }.items():
        monkeypatch.setenv(name, value)
    state = FlakyGlue()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            state.requests.append(self.headers.get("X-Amz-Target", ""))
            if state.failures:
                status, code = state.failures.pop(0)
                body = {"__type": code, "Message": f"{code} on purpose"}
            else:
                status, body = 200, {"Database": {"Name": "signal"}}
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/x-amz-json-1.1")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


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
