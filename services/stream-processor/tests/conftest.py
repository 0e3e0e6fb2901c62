"""Fixtures: local endpoints (shared plugin) and one Spark session per test process."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest_plugins = ["signal_testing.pytest_plugin"]

# Spark binds to loopback (pants.toml sets this for `./pants test`; a plain pytest run too), and
# the Python workers it starts inherit it.
os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")


@pytest.fixture(scope="session")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One local Spark session for every Spark test in this process."""
    from signal_processor.settings import ProcessorSettings
    from signal_processor.wiring import build_session

    settings = ProcessorSettings(spark_master="local[2]", shuffle_partitions=2)
    session = build_session(settings, app_name="signal-processor-tests")
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture
def lake(tmp_path: Path) -> Path:
    return tmp_path / "lake"
