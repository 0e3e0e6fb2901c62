"""Pytest fixtures for the local AWS endpoints; load with `pytest_plugins = [...]` in a conftest.

Each endpoint starts once per test process (session scope), on a free 127.0.0.1 port, only when a
test asks for it, and is stopped by PID at the end of the session. `SIGNAL_LOCAL_AWS=containers`
runs them as containers instead (see signal_local.containers); without a Docker engine the
session ends with one sentence saying so.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

import boto3
import pytest

from signal_local import containers
from signal_local.endpoints import (
    FAKE_CREDENTIALS,
    start_kinesalite,
    start_moto,
)


class _Endpoint(Protocol):
    url: str

    def stop(self) -> None: ...


def _start(helper: Callable[[], _Endpoint], container: Callable[[], _Endpoint]) -> _Endpoint:
    """The endpoint of the chosen backend; a containers choice that cannot run ends the session
    with its one-line reason (no traceback, no silent fallback)."""
    try:
        chosen = containers.backend()
        return container() if chosen == "containers" else helper()
    except (ValueError, containers.ContainersUnavailableError) as exc:
        pytest.exit(str(exc), returncode=pytest.ExitCode.USAGE_ERROR)


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
def kinesalite(endpoint_log_dir: Path) -> Iterator[_Endpoint]:
    """The Kinesis endpoint of this test session: kinesalite, or LocalStack's in a container."""
    endpoint = _start(
        lambda: start_kinesalite(endpoint_log_dir), containers.start_localstack_kinesis
    )
    yield endpoint
    endpoint.stop()


@pytest.fixture(scope="session")
def moto_server(endpoint_log_dir: Path) -> Iterator[_Endpoint]:
    """A moto server (Glue, S3, Athena APIs) for this test session, as a process or container."""
    endpoint = _start(lambda: start_moto(endpoint_log_dir), containers.start_moto_container)
    yield endpoint
    endpoint.stop()


@pytest.fixture(scope="session")
def kinesis_endpoint_url(kinesalite: _Endpoint) -> str:
    return kinesalite.url


@pytest.fixture(scope="session")
def moto_endpoint_url(moto_server: _Endpoint) -> str:
    return moto_server.url


@pytest.fixture(scope="session")
def kinesis_client(kinesis_endpoint_url: str) -> Any:
    return boto3.client("kinesis", endpoint_url=kinesis_endpoint_url, region_name="us-east-1")


@pytest.fixture
def s3(moto_endpoint_url: str) -> Any:
    """A plain boto3 S3 client on moto server."""
    return boto3.client("s3", endpoint_url=moto_endpoint_url, region_name="us-east-1")


@pytest.fixture
def bucket(s3: Any) -> str:
    """A fresh S3 bucket on moto server (the server is shared by the session)."""
    name = f"bucket-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=name)
    return name


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
