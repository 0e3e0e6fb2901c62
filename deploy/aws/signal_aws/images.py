"""Docker build contexts of the service images, as Pants' docker_image lays them out: the
service's Dockerfile next to `services.<service>/<name>.pex` (built by `./pants package`) and
any files the image copies at their repository paths. Every image is built for linux/amd64 and
every task runs on X86_64 Linux, whatever machine deploys: the pex files are resolved for
x86_64."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_ecs as ecs
from constructs import Construct

from signal_aws.settings import DeploySettings, repo_root

PLATFORM = ecr_assets.Platform.LINUX_AMD64
RUNTIME_PLATFORM = ecs.RuntimePlatform(
    cpu_architecture=ecs.CpuArchitecture.X86_64,
    operating_system_family=ecs.OperatingSystemFamily.LINUX,
)


@dataclass(frozen=True)
class ImageSpec:
    """One image: its Dockerfile, the pex it copies, the target that builds that pex and the
    repository files it copies besides (the docker_image target's `files` dependencies)."""

    dockerfile: str
    pex: str
    target: str
    files: tuple[str, ...] = ()


IMAGES: dict[str, ImageSpec] = {
    "producer": ImageSpec(
        "services/producer/Dockerfile",
        "services.producer/signal-producer.pex",
        "services/producer:signal-producer",
        files=("services/producer/samples/mobile_logs_sample.csv",),
    ),
    "catalog-manager": ImageSpec(
        "services/catalog-manager/Dockerfile",
        "services.catalog-manager/signal-catalog.pex",
        "services/catalog-manager:signal-catalog",
    ),
    "catalog-manager-lambda": ImageSpec(
        "services/catalog-manager/Dockerfile.lambda",
        "services.catalog-manager/signal-catalog-lambda.pex",
        "services/catalog-manager:signal-catalog-lambda",
    ),
    "metrics-api": ImageSpec(
        "services/metrics-api/Dockerfile",
        "services.metrics-api/signal-api.pex",
        "services/metrics-api:signal-api",
    ),
    "dashboard": ImageSpec(
        "services/dashboard/Dockerfile",
        "services.dashboard/signal-dashboard.pex",
        "services/dashboard:signal-dashboard",
    ),
}


def image_context(settings: DeploySettings, name: str) -> Path:
    """The build context directory of image `name`, (re)assembled under the context dir."""
    spec = IMAGES[name]
    root = repo_root()
    context = settings.context_dir / "images" / name
    context.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(root / spec.dockerfile, context / "Dockerfile")
    built = root / "dist" / spec.pex
    if built.is_file():
        target = context / spec.pex
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(built, target)
    for path in spec.files:
        target = context / path
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(root / path, target)
    return context


def missing_pex_files() -> list[str]:
    """The `./pants package` commands still needed before the images can be built."""
    root = repo_root()
    targets = {spec.target for spec in IMAGES.values() if not (root / "dist" / spec.pex).is_file()}
    return sorted(targets)


def container_image(settings: DeploySettings, name: str) -> ecs.ContainerImage:
    """Image `name` built from its context for linux/amd64."""
    return ecs.ContainerImage.from_asset(str(image_context(settings, name)), platform=PLATFORM)


def task_definition(scope: Construct, cid: str, **kw: Any) -> ecs.FargateTaskDefinition:
    """A Fargate task definition on X86_64 Linux (the images' platform)."""
    return ecs.FargateTaskDefinition(scope, cid, runtime_platform=RUNTIME_PLATFORM, **kw)
