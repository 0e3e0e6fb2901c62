"""ResultCache: TTL, single-flight, stale-on-error bounded in age, bounds in bytes and entries,
expiry; and the key ring, rate limiter and per-key concurrency limit."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from signal_api.core.auth import KeyRing, hash_key
from signal_api.core.cache import ENTRY_OVERHEAD_BYTES, ResultCache
from signal_api.core.errors import EngineUnavailableError
from signal_api.core.ratelimit import ConcurrencyLimit, RateLimiter

MiB = 1024 * 1024


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def make_cache(
    clock: Clock,
    *,
    ttl_s: float = 100,
    max_entries: int = 10,
    max_bytes: int = MiB,
    stale_max_age_s: float = 1000,
) -> ResultCache:
    """A cache of str values, each sized by its length."""
    return ResultCache(
        ttl_s=ttl_s,
        max_entries=max_entries,
        max_bytes=max_bytes,
        stale_max_age_s=stale_max_age_s,
        size_of=len,
        clock=clock,
    )


def test_single_flight_shares_one_computation_and_its_error() -> None:
    async def scenario() -> None:
        cache = make_cache(Clock(), ttl_s=5)
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
        cache = make_cache(clock, ttl_s=10, stale_max_age_s=60)
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

        clock.now = 70.0  # v2 is 60 s old: too old to stand in for an answer
        with pytest.raises(EngineUnavailableError):
            await cache.get("k", failing)

    asyncio.run(scenario())


def test_lru_bound_evicts_the_least_recently_used_entry() -> None:
    async def scenario() -> None:
        cache = make_cache(Clock(), max_entries=2)
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


def test_byte_bound_evicts_least_recently_used_and_never_stores_an_oversized_value() -> None:
    async def scenario() -> None:
        budget = 3 * (1000 + ENTRY_OVERHEAD_BYTES)  # three 1,000-byte values
        cache = make_cache(Clock(), max_bytes=budget)

        async def text(n: int, fill: str) -> str:
            return fill * n

        for name in "abc":
            await cache.get(name, lambda name=name: text(1000, name))
        assert (len(cache), cache.nbytes) == (3, budget)
        await cache.get("a", lambda: text(1000, "x"))  # a hit: "b" is now the LRU entry
        await cache.get("d", lambda: text(1000, "d"))
        assert cache.nbytes == budget
        assert (await cache.get("a", lambda: text(1, "?"))).hit  # still cached
        assert (await cache.get("b", lambda: text(1, "B"))).value == "B"  # evicted: recomputed
        huge = await cache.get("huge", lambda: text(budget, "h"))
        assert (huge.hit, len(huge.value)) == (False, budget)  # served ...
        assert "huge" not in cache  # ... never kept
        assert cache.nbytes <= budget

    asyncio.run(scenario())


def test_expired_entries_are_dropped_after_the_stale_age() -> None:
    async def scenario() -> None:
        clock = Clock()
        cache = make_cache(clock, ttl_s=10, stale_max_age_s=60)

        async def value(fill: str) -> str:
            return fill * 500

        await cache.get("old", lambda: value("o"))
        clock.now = 30.0
        await cache.get("new", lambda: value("n"))
        assert len(cache) == 2  # "old" is past its TTL but still a stale fallback
        clock.now = 60.0
        cache.sweep()
        assert len(cache) == 1  # "old" is 60 s old: dropped with its bytes
        assert cache.nbytes == 500 + ENTRY_OVERHEAD_BYTES
        clock.now = 95.0
        await cache.get("third", lambda: value("t"))  # a store sweeps too
        assert ("old" in cache, "new" in cache, "third" in cache) == (False, False, True)

    asyncio.run(scenario())


def test_an_idle_cache_releases_its_entries_on_a_timer() -> None:
    async def scenario() -> None:
        # the real monotonic clock: the timer fires when the entry is stale_max_age_s old
        cache = ResultCache(
            ttl_s=0.01, max_entries=10, max_bytes=MiB, stale_max_age_s=0.05, size_of=len
        )

        async def value() -> str:
            return "v" * 1000

        await cache.get("k", value)
        assert cache.nbytes > 0
        for _ in range(500):  # no request comes: only the timer can drop it
            if not len(cache):
                break
            await asyncio.sleep(0.01)
        assert (len(cache), cache.nbytes) == (0, 0)

    asyncio.run(scenario())


def test_concurrency_limit_queues_a_keys_excess_and_spares_other_keys() -> None:
    async def scenario() -> None:
        limit = ConcurrencyLimit(per_key=2)
        release = asyncio.Event()
        running: dict[str, int] = {"a": 0, "b": 0}
        peak: dict[str, int] = {"a": 0, "b": 0}

        async def work(key: str) -> None:
            async with limit.hold(key):
                running[key] += 1
                peak[key] = max(peak[key], running[key])
                await release.wait()
                running[key] -= 1

        tasks = [asyncio.ensure_future(work("a")) for _ in range(5)]
        tasks.append(asyncio.ensure_future(work("b")))
        for _ in range(20):
            await asyncio.sleep(0)
        assert running == {"a": 2, "b": 1}  # "b" is served while "a" is saturated
        assert limit.in_use("a") == 5
        release.set()
        await asyncio.gather(*tasks)
        assert peak == {"a": 2, "b": 1}
        assert limit.in_use("a") == 0
        assert len(limit) == 0  # idle keys cost nothing

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


def test_rate_limiter_charges_cost_after_the_fact() -> None:
    clock = Clock()
    limiter = RateLimiter(per_minute=60, burst=10, clock=clock)
    assert limiter.acquire("a") == 0.0
    limiter.charge("a", 12)  # an expensive answer: 9 tokens left, 12 more owed
    assert limiter.acquire("a") == pytest.approx(4.0)  # -3 tokens: 4 s to reach 1 at 1/s
    assert limiter.acquire("b") == 0.0  # other keys keep their own budget
    limiter.charge("a", 1000)
    assert limiter.acquire("a") == pytest.approx(11.0)  # the debt is floored at one burst
