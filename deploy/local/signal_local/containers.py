"""The local AWS endpoints as containers (testcontainers), where a Docker engine runs.

`SIGNAL_LOCAL_AWS` chooses what the shared test fixtures start:

- `helper` (default): kinesalite (npm) and moto server (pip) as child processes; no Docker.
- `containers`: Kinesis from LocalStack (testcontainers' LocalStack module) and the Glue, S3 and
  Athena APIs from moto's own image (`motoserver/moto`), because LocalStack's community image
  has no Glue or Athena. The tests talk to them through the same endpoint URLs.

Without a Docker engine the containers choice fails with one sentence saying so; nothing falls
back silently.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

BACKEND_ENV = "SIGNAL_LOCAL_AWS"
BACKENDS = ("helper", "containers")
LOCALSTACK_IMAGE = os.environ.get("SIGNAL_LOCALSTACK_IMAGE", "localstack/localstack:4.0")
MOTO_IMAGE = os.environ.get("SIGNAL_MOTO_IMAGE", "motoserver/moto:5.0.12")


class ContainersUnavailableError(RuntimeError):
    """The containers backend was chosen but cannot run here (one-line reason)."""


def backend() -> str:
    """The chosen backend of the local AWS endpoints (`helper` unless SIGNAL_LOCAL_AWS says)."""
    value = os.environ.get(BACKEND_ENV, "helper").strip().lower() or "helper"
    if value not in BACKENDS:
        raise ValueError(
            f"{BACKEND_ENV}={value!r} is not one of {', '.join(BACKENDS)} "
            "(helper: kinesalite and moto server; containers: LocalStack and moto in Docker)"
        )
    return value


def docker_unavailable_reason() -> str | None:
    """Why no Docker engine can be used here, or None when one answers."""
    try:
        import docker  # the Docker SDK testcontainers uses
    except ImportError:  # pragma: no cover - in the resolve
        return "the docker package is not installed"
    try:
        client = docker.from_env(timeout=5)
        client.ping()
        client.close()
    except Exception as exc:
        detail = " ".join(str(exc).split())[:160]
        return f"no Docker engine answers ({detail})"
    return None


def _require_docker() -> None:
    reason = docker_unavailable_reason()
    if reason is not None:
        raise ContainersUnavailableError(
            f"{BACKEND_ENV}=containers needs a running Docker engine, and {reason}; "
            f"unset {BACKEND_ENV} (or set it to helper) to use kinesalite and moto server"
        )


@dataclass
class ContainerEndpoint:
    """A started container serving an AWS API at `url`; `stop()` removes it."""

    name: str
    url: str
    container: Any

    def stop(self) -> None:
        """Stop and remove the container."""
        self.container.stop()


def start_localstack_kinesis() -> ContainerEndpoint:
    """Kinesis from LocalStack (testcontainers' LocalStack module)."""
    _require_docker()
    from testcontainers.community.localstack import LocalStackContainer

    container = LocalStackContainer(image=LOCALSTACK_IMAGE, region_name="us-east-1")
    container.with_services("kinesis")
    container.start()
    return ContainerEndpoint("localstack-kinesis", container.get_url(), container)


def start_moto_container() -> ContainerEndpoint:
    """The Glue, S3 and Athena APIs from moto's image (the same server as the helper's)."""
    _require_docker()
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.waiting_utils import wait_for_logs

    container = DockerContainer(MOTO_IMAGE).with_exposed_ports(5000)
    container.start()
    wait_for_logs(container, "Running on", timeout=60)
    url = f"http://{container.get_container_host_ip()}:{container.get_exposed_port(5000)}"
    return ContainerEndpoint("moto", url, container)
