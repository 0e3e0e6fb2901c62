from __future__ import annotations

pytest_plugins = ["signal_local.pytest_plugin"]
