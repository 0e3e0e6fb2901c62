"""The smoke's named errors; each message is one plain sentence."""

from __future__ import annotations


class SmokeError(Exception):
    """Base of the smoke's errors."""


class ConfigError(SmokeError):
    """What to check is missing or contradictory (nothing was run)."""


class RefusedError(SmokeError):
    """A definitive refusal (wrong key, no such stream/job, access denied): waiting is pointless."""


class UnavailableError(SmokeError):
    """A transient failure (connection, 5xx, throttling): the check keeps waiting."""
