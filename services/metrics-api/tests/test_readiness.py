"""Readiness (core/readiness.py): a probe that can read the lake does not make up for data
queries failing in a row; the next success restores readiness. A hand-moved clock, no I/O."""

from __future__ import annotations

import asyncio

import pytest

from signal_api.core.errors import LakeUnreadableError, NotReadyError
from signal_api.core.queries import Query
from signal_api.core.readiness import Readiness

FAILED = Query("signal_strength", "SELECT 1", ())


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Engine:
    """What the probe and the retry run: counts calls, fails while `error` is set."""

    def __init__(self) -> None:
        self.probes = 0
        self.retried: list[Query] = []
        self.error: Exception | None = None

    async def probe(self) -> None:
        self.probes += 1
        await asyncio.sleep(0)
        if self.error is not None:
            raise self.error

    async def retry(self, query: Query) -> None:
        self.retried.append(query)
        if self.error is not None:
            raise self.error


def check(readiness: Readiness, engine: Engine) -> bool:
    return asyncio.run(readiness.check(engine.probe, retry=engine.retry))


def test_failures_below_the_threshold_only_withdraw_the_proof() -> None:
    clock, engine = Clock(), Engine()
    readiness = Readiness(ttl_s=30, clock=clock, failure_threshold=3)
    readiness.succeeded()
    assert check(readiness, engine) is True  # a recent success: no probe
    assert engine.probes == 0
    readiness.failed(FAILED, LakeUnreadableError("x"))
    readiness.failed(FAILED, LakeUnreadableError("x"))
    assert check(readiness, engine) is False  # proven again by the probe
    assert (engine.probes, engine.retried) == (1, [])
    assert check(readiness, engine) is True
    clock.now += 31
    assert check(readiness, engine) is False  # the proof lasts ttl_s
    assert engine.probes == 2


def test_the_threshold_withdraws_readiness_though_the_probe_reads() -> None:
    clock, engine = Clock(), Engine()
    readiness = Readiness(ttl_s=30, clock=clock, failure_threshold=3)
    error = LakeUnreadableError("query signal_strength cannot read t/dt=2026-11-23/hour=0")
    for _ in range(2):
        readiness.failed(FAILED, error)
    readiness.succeeded()  # a success in between: the failures are no longer in a row
    for _ in range(3):
        readiness.failed(FAILED, error)
    engine.error = error  # the failed query still fails
    with pytest.raises(LakeUnreadableError, match="hour=0"):
        check(readiness, engine)
    assert engine.retried == [FAILED]  # the query that failed re-runs, not the probe
    assert engine.probes == 0
    clock.now += 3600
    with pytest.raises(LakeUnreadableError):  # no expiry while it fails
        check(readiness, engine)
    engine.error = None
    assert check(readiness, engine) is False  # its success restores readiness
    assert check(readiness, engine) is True
    assert engine.probes == 0


def test_an_unknown_failed_query_holds_readiness_until_a_success_or_ttl() -> None:
    clock, engine = Clock(), Engine()
    readiness = Readiness(ttl_s=30, clock=clock, failure_threshold=2)
    readiness.failed()
    readiness.failed()
    with pytest.raises(NotReadyError, match="2 data queries failed in a row"):
        check(readiness, engine)
    assert engine.probes == 0
    readiness.succeeded()  # a data query answered
    assert check(readiness, engine) is True
    readiness.failed()
    readiness.failed()
    clock.now += 31  # no failure for ttl_s (nobody queries): the probe decides again
    assert check(readiness, engine) is False
    assert engine.probes == 1
    assert check(readiness, engine) is True


def test_concurrent_checks_share_one_probe_and_its_error() -> None:
    engine = Engine()
    engine.error = LakeUnreadableError("lake root /lake cannot be read (Permission denied)")
    readiness = Readiness(ttl_s=30, clock=Clock(), failure_threshold=3)

    async def many() -> list[BaseException | bool]:
        return await asyncio.gather(
            *(readiness.check(engine.probe, retry=engine.retry) for _ in range(10)),
            return_exceptions=True,
        )

    outcomes = asyncio.run(many())
    assert engine.probes == 1
    assert all(isinstance(o, LakeUnreadableError) for o in outcomes)
    engine.error = None
    assert check(readiness, engine) is False  # a failed probe proves nothing: runs again
    assert engine.probes == 2
