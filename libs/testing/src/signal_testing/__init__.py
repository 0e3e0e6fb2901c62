"""Test support for Signal Stream: the local endpoints' pytest fixtures and the fixture lake."""

from __future__ import annotations
