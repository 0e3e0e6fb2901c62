"""Fixtures: the shared local-endpoint plugin (kinesalite on a free loopback port)."""

from __future__ import annotations

pytest_plugins = ["signal_local.pytest_plugin"]
