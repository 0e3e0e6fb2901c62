from __future__ import annotations

pytest_plugins = ["signal_testing.pytest_plugin"]
