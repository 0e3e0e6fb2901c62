"""API keys: configured as SHA-256 hashes, checked in constant time."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass


def hash_key(key: str) -> str:
    """The SHA-256 hex digest under which a key is configured."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class KeyRing:
    """Accepted key hashes and their names (names label metrics and rate limits)."""

    hashes: tuple[tuple[str, str], ...]

    @classmethod
    def parse(cls, entries: Iterable[str]) -> KeyRing:
        """From 'name:sha256hex' or bare 'sha256hex' entries."""
        parsed: list[tuple[str, str]] = []
        for i, entry in enumerate(entries):
            name, _, digest = entry.rpartition(":")
            digest = digest.strip().lower()
            if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
                raise ValueError(f"API key entry {i} is not a SHA-256 hex digest")
            parsed.append((name or f"key{i}", digest))
        return cls(tuple(parsed))

    def name_of(self, key: str) -> str | None:
        """The name of a presented key, or None if it is not accepted."""
        digest = hash_key(key)
        found = None
        for name, expected in self.hashes:
            if hmac.compare_digest(digest, expected):
                found = name
        return found
