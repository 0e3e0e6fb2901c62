"""Signal Stream producer: synthetic telemetry and legacy CSV replay into Kinesis."""

from __future__ import annotations

__version__ = "0.4.1"
