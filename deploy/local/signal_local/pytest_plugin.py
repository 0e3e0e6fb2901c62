"""Pytest fixtures for the local AWS endpoints; load with `pytest_plugins = [...]` in a conftest.

Each endpoint starts once per test process (session scope), on a free 127.0.0.1 port, only when a
test asks for it, and is stopped by PID at the end of the session.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from signal_local.endpoints import (
    FAKE_CREDENTIALS,
    ManagedProcess,
    start_kinesalite,
    start_moto,
)


@pytest.fixture(scope="session", autouse=True)
def _fake_aws_credentials() -> Iterator[None]:
    saved = {key: os.environ.get(key) for key in FAKE_CREDENTIALS}
    os.environ.update(FAKE_CREDENTIALS)
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def endpoint_log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("endpoint-logs")


@pytest.fixture(scope="session")
def kinesalite(endpoint_log_dir: Path) -> Iterator[ManagedProcess]:
    """A kinesalite server for this test session."""
    proc = start_kinesalite(endpoint_log_dir)
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def moto_server(endpoint_log_dir: Path) -> Iterator[ManagedProcess]:
    """A moto server (Glue, S3, Athena APIs) for this test session."""
    proc = start_moto(endpoint_log_dir)
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def kinesis_endpoint_url(kinesalite: ManagedProcess) -> str:
    return kinesalite.url


@pytest.fixture(scope="session")
def moto_endpoint_url(moto_server: ManagedProcess) -> str:
    return moto_server.url


@pytest.fixture(scope="session")
def kinesis_client(kinesis_endpoint_url: str) -> Any:
    return boto3.client("kinesis", endpoint_url=kinesis_endpoint_url, region_name="us-east-1")


def wait_for_stream_active(client: Any, name: str, timeout: float = 30.0) -> None:
    """Block until the stream is ACTIVE."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = client.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
        if status["StreamStatus"] == "ACTIVE":
            return
        time.sleep(0.05)
    raise TimeoutError(f"stream {name} not ACTIVE after {timeout}s")


@pytest.fixture
def make_stream(kinesis_client: Any) -> Iterator[Callable[..., str]]:
    """Factory: create a fresh, ACTIVE stream with N shards; deleted after the test."""
    created: list[str] = []

    def create(shards: int = 1, prefix: str = "test") -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:10]}"
        kinesis_client.create_stream(StreamName=name, ShardCount=shards)
        created.append(name)
        wait_for_stream_active(kinesis_client, name)
        return name

    yield create
    for name in created:
        kinesis_client.delete_stream(StreamName=name, EnforceConsumerDeletion=True)
