"""A TTL result cache with single-flight and stale-on-error (asyncio, no I/O of its own)."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Any

from signal_api.core.errors import EngineError


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


class ResultCache:
    """Caches results per key for `ttl_s`; identical concurrent misses share one computation;
    when the computation fails with an EngineError the last good value is served as stale."""

    def __init__(
        self,
        *,
        ttl_s: float,
        max_entries: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl_s = ttl_s
        self._max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[Hashable, _Entry] = OrderedDict()
        self._inflight: dict[Hashable, asyncio.Future[Any]] = {}

    def __len__(self) -> int:
        return len(self._entries)

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
            last = self._entries.get(key)
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

    def _store(self, key: Hashable, value: Any) -> None:
        self._entries[key] = _Entry(value, self._clock())
        self._entries.move_to_end(key)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)
