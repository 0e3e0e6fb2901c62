"""Each package's version is one number: its pyproject.toml's (which deploy tags images with)
equals the `__version__` it reports (the API's OpenAPI document, logs)."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from types import ModuleType

import pytest

import signal_api
import signal_catalog
import signal_common
import signal_dashboard
import signal_processor
import signal_producer

PACKAGES: dict[str, ModuleType] = {
    "libs/common": signal_common,
    "services/producer": signal_producer,
    "services/stream-processor": signal_processor,
    "services/catalog-manager": signal_catalog,
    "services/metrics-api": signal_api,
    "services/dashboard": signal_dashboard,
}


def _root() -> Path:
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "libs/common/pyproject.toml").exists():
            return parent
    return Path(os.environ.get("SIGNAL_STREAM_ROOT", "."))


@pytest.mark.parametrize("directory", sorted(PACKAGES))
def test_version_is_the_pyproject_version(directory: str) -> None:
    pyproject = tomllib.loads((_root() / directory / "pyproject.toml").read_text("utf-8"))
    version = pyproject["project"]["version"]
    module = PACKAGES[directory]
    assert module.__version__ == version, (
        f"{module.__name__}.__version__ is {module.__version__}, {directory}/pyproject.toml "
        f"says {version}: change both together"
    )
