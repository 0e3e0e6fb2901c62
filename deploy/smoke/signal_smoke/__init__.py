"""signal-smoke: after a deploy, prove the platform carries marked events end to end."""

__version__ = "0.1.0"
