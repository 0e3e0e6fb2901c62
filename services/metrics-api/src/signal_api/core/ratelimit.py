"""Per-key token-bucket rate limiting, and a per-key cap on concurrent computations."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """`per_minute` requests per key on average, bursts of up to `burst`."""

    def __init__(
        self,
        *,
        per_minute: int,
        burst: int,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 100_000,
    ) -> None:
        self._rate = per_minute / 60.0
        self._burst = float(burst)
        self._clock = clock
        self._max_keys = max_keys
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def _refilled(self, key: str) -> _Bucket:
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self._max_keys:
                self._buckets.clear()  # bounded memory; only costs a fresh burst
            bucket = self._buckets[key] = _Bucket(self._burst, now)
        bucket.tokens = min(self._burst, bucket.tokens + (now - bucket.updated) * self._rate)
        bucket.updated = now
        return bucket

    def acquire(self, key: str) -> float:
        """0.0 if the request may proceed, else the seconds until it may."""
        with self._lock:
            bucket = self._refilled(key)
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return 0.0
            return (1.0 - bucket.tokens) / self._rate

    def charge(self, key: str, tokens: float) -> None:
        """Take `tokens` more from `key`'s bucket after the fact (the cost of work already done:
        the bucket may go below zero, and the key waits until it has refilled)."""
        if tokens <= 0:
            return
        with self._lock:
            bucket = self._refilled(key)
            # a floor, so one key's debt (and its Retry-After) stays bounded
            bucket.tokens = max(-self._burst, bucket.tokens - tokens)


class ConcurrencyLimit:
    """At most `per_key` computations at once per key; more wait their turn (in order).

    Only cache misses take a slot, so cached answers never wait behind a key's expensive ones.
    A key's semaphore exists only while it is in use, so idle keys cost no memory."""

    def __init__(self, *, per_key: int) -> None:
        self._per_key = per_key
        self._slots: dict[str, tuple[asyncio.Semaphore, list[int]]] = {}

    def __len__(self) -> int:
        return len(self._slots)  # keys with a computation running or waiting

    def in_use(self, key: str) -> int:
        """Computations of `key` holding or awaiting a slot."""
        slot = self._slots.get(key)
        return slot[1][0] if slot else 0

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        """A slot of `key` for the duration of the block."""
        slot = self._slots.get(key)
        if slot is None:
            slot = self._slots[key] = (asyncio.Semaphore(self._per_key), [0])
        semaphore, users = slot
        users[0] += 1
        try:
            async with semaphore:
                yield
        finally:
            users[0] -= 1
            if users[0] == 0:
                del self._slots[key]
