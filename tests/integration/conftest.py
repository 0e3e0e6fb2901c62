"""Integration fixtures: the shared local endpoints (kinesalite, moto server)."""

from __future__ import annotations

pytest_plugins = ["signal_testing.pytest_plugin"]
