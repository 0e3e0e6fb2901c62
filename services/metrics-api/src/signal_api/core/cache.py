"""A TTL result cache bounded in bytes, with single-flight and a stale fallback bounded in age
(asyncio, no I/O of its own).

An entry is fresh for `ttl_s`. After that it is kept only so that an engine failure can be
answered with it (marked stale), and only until it is `stale_max_age_s` old: then it is dropped,
by the next store or by a timer when no request comes, so an idle cache pins no memory. Values
are sized by `size_of`; the cache holds at most `max_bytes` of them (least recently used first
out) and never stores a value larger than that.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Any

from signal_api.core.errors import EngineError

# What an entry costs besides its value: the key tuple, the entry and two dict slots (~0.5 KiB
# measured with sys.getsizeof on a typical key; rounded up, so many tiny entries still count).
ENTRY_OVERHEAD_BYTES = 1024


@dataclass(frozen=True)
class CacheResult:
    """A value and how it was obtained."""

    value: Any
    hit: bool
    stale: bool


@dataclass
class _Entry:
    value: Any
    stored_at: float
    nbytes: int


class ResultCache:
    """Caches results per key for `ttl_s`; identical concurrent misses share one computation;
    when the computation fails with an EngineError the last good value is served as stale if it
    is younger than `stale_max_age_s`."""

    def __init__(
        self,
        *,
        ttl_s: float,
        max_entries: int,
        max_bytes: int,
        stale_max_age_s: float,
        size_of: Callable[[Any], int],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl_s = ttl_s
        self._stale_max_age_s = stale_max_age_s
        # an entry lives as long as either use needs it: fresh hits, then the stale fallback
        self._retain_s = max(ttl_s, stale_max_age_s)
        self._max_entries = max_entries
        self._max_bytes = max_bytes
        self._size_of = size_of
        self._clock = clock
        self._entries: OrderedDict[Hashable, _Entry] = OrderedDict()  # least recently used first
        self._by_age: OrderedDict[Hashable, float] = OrderedDict()  # oldest stored first
        self._nbytes = 0
        self._inflight: dict[Hashable, asyncio.Future[Any]] = {}
        self._sweeper: asyncio.TimerHandle | None = None

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._entries

    @property
    def nbytes(self) -> int:
        """Bytes the cached values (and their entries' overhead) take."""
        return self._nbytes

    async def get(self, key: Hashable, compute: Callable[[], Awaitable[Any]]) -> CacheResult:
        """The cached value of `key`, or a freshly computed (or stale) one."""
        entry = self._entries.get(key)
        if entry is not None and self._clock() - entry.stored_at < self._ttl_s:
            self._entries.move_to_end(key)
            return CacheResult(entry.value, hit=True, stale=False)
        inflight = self._inflight.get(key)
        if inflight is not None:
            # shield: one waiter being cancelled must not cancel the shared computation
            value, stale = await asyncio.shield(inflight)
            return CacheResult(value, hit=True, stale=stale)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            value = await compute()
        except EngineError as exc:
            last = self._stale_value(key)
            if last is None:
                future.set_exception(exc)
                future.exception()  # mark retrieved: waiters re-raise it themselves
                raise
            future.set_result((last.value, True))
            return CacheResult(last.value, hit=False, stale=True)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()
            raise
        finally:
            self._inflight.pop(key, None)
        self._store(key, value)
        future.set_result((value, False))
        return CacheResult(value, hit=False, stale=False)

    def _stale_value(self, key: Hashable) -> _Entry | None:
        last = self._entries.get(key)
        if last is None or self._clock() - last.stored_at >= self._stale_max_age_s:
            return None
        return last

    def sweep(self) -> None:
        """Drop every entry older than both the TTL and the stale fallback's age bound."""
        now = self._clock()
        while self._by_age:
            key, stored_at = next(iter(self._by_age.items()))
            if now - stored_at < self._retain_s:
                break
            self._drop(key)

    def _drop(self, key: Hashable) -> None:
        entry = self._entries.pop(key)
        del self._by_age[key]
        self._nbytes -= entry.nbytes

    def _store(self, key: Hashable, value: Any) -> None:
        if key in self._entries:
            self._drop(key)
        self.sweep()
        nbytes = self._size_of(value) + ENTRY_OVERHEAD_BYTES
        if nbytes > self._max_bytes:
            return  # served, never kept: it alone would fill the cache
        now = self._clock()
        self._entries[key] = _Entry(value, now, nbytes)
        self._by_age[key] = now
        self._nbytes += nbytes
        while self._nbytes > self._max_bytes or len(self._entries) > self._max_entries:
            self._drop(next(iter(self._entries)))
        self._schedule_sweep()

    def _schedule_sweep(self) -> None:
        """A timer that drops the oldest entry when it expires, so memory is released even when
        no request comes (rescheduled for the next one while entries remain)."""
        if self._sweeper is not None or not self._by_age:
            return
        oldest = next(iter(self._by_age.values()))
        delay = max(0.0, oldest + self._retain_s - self._clock())
        self._sweeper = asyncio.get_running_loop().call_later(delay, self._on_timer)

    def _on_timer(self) -> None:
        self._sweeper = None
        self.sweep()
        self._schedule_sweep()
