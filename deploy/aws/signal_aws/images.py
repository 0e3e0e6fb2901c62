"""Docker build contexts of the service images, as Pants' docker_image lays them out: the
service's Dockerfile next to `services.<service>/<name>.pex` (built by `./pants package`) and
any files the image copies at their repository paths."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from signal_aws.settings import DeploySettings, repo_root


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
        "services.catalog-manager/signal-catalog.pex",
        "services/catalog-manager:signal-catalog",
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
