"""ResultCache: TTL, single-flight, stale-on-error; and the key ring and rate limiter."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from signal_api.core.auth import KeyRing, hash_key
from signal_api.core.cache import ResultCache
from signal_api.core.errors import EngineUnavailableError
from signal_api.core.ratelimit import RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_single_flight_shares_one_computation_and_its_error() -> None:
    async def scenario() -> None:
        cache = ResultCache(ttl_s=5, max_entries=10, clock=Clock())
        release = asyncio.Event()
        calls = 0

        async def compute() -> str:
            nonlocal calls
            calls += 1
            await release.wait()
            return "value"

        tasks = [asyncio.ensure_future(cache.get("k", compute)) for _ in range(10)]
        await asyncio.sleep(0)
        release.set()
        results = await asyncio.gather(*tasks)
        assert calls == 1
        assert {r.value for r in results} == {"value"}
        assert sum(not r.hit for r in results) == 1

        async def failing() -> str:
            await asyncio.sleep(0)
            raise EngineUnavailableError("down")

        errors = await asyncio.gather(
            *(cache.get("other", failing) for _ in range(5)), return_exceptions=True
        )
        assert all(isinstance(e, EngineUnavailableError) for e in errors)

    asyncio.run(scenario())


def test_ttl_expiry_and_stale_value_on_engine_error() -> None:
    async def scenario() -> None:
        clock = Clock()
        cache = ResultCache(ttl_s=10, max_entries=10, clock=clock)
        values = iter(["v1", "v2"])

        async def compute() -> str:
            return next(values)

        assert (await cache.get("k", compute)).value == "v1"
        clock.now = 9.9
        assert (await cache.get("k", compute)).hit
        clock.now = 10.0
        fresh = await cache.get("k", compute)
        assert (fresh.value, fresh.hit, fresh.stale) == ("v2", False, False)

        async def failing() -> str:
            raise EngineUnavailableError("down")

        clock.now = 30.0
        stale = await cache.get("k", failing)
        assert (stale.value, stale.stale) == ("v2", True)

        async def broken() -> str:
            raise ValueError("boom")  # not an engine error: never hidden behind stale data

        with pytest.raises(ValueError, match="boom"):
            await cache.get("k", broken)

    asyncio.run(scenario())


def test_lru_bound_evicts_the_least_recently_used_entry() -> None:
    async def scenario() -> None:
        cache = ResultCache(ttl_s=100, max_entries=2, clock=Clock())
        computed: list[str] = []

        def compute(key: str) -> Any:
            async def value() -> str:
                computed.append(key)
                return key

            return value

        await cache.get("a", compute("a"))
        await cache.get("b", compute("b"))
        await cache.get("a", compute("a"))  # a hit: "a" is now more recent than "b"
        await cache.get("c", compute("c"))  # full: evicts "b", the least recently used
        assert len(cache) == 2
        assert computed == ["a", "b", "c"]
        await cache.get("a", compute("a"))
        await cache.get("c", compute("c"))
        assert computed == ["a", "b", "c"]  # both still cached
        await cache.get("b", compute("b"))
        assert computed == ["a", "b", "c", "b"]  # "b" was the one evicted

    asyncio.run(scenario())


def test_key_ring_accepts_only_configured_hashes() -> None:
    ring = KeyRing.parse([f"dash:{hash_key('k1')}", hash_key("k2").upper()])
    assert ring.name_of("k1") == "dash"
    assert ring.name_of("k2") == "key1"
    assert ring.name_of("k3") is None
    with pytest.raises(ValueError, match="not a SHA-256"):
        KeyRing.parse(["plaintext-key"])


def test_rate_limiter_refills() -> None:
    clock = Clock()
    limiter = RateLimiter(per_minute=60, burst=2, clock=clock)
    assert limiter.acquire("a") == 0.0
    assert limiter.acquire("a") == 0.0
    assert limiter.acquire("a") == pytest.approx(1.0)
    clock.now = 0.5
    assert limiter.acquire("a") == pytest.approx(0.5)
    clock.now = 1.0
    assert limiter.acquire("a") == 0.0
