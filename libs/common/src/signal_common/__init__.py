"""Signal Stream's shared definitions: event schema, lake layout, quality bands, settings, logs."""

from __future__ import annotations

__version__ = "0.8.0"
