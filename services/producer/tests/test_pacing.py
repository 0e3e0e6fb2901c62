"""Pacing: target rate slots, burst cap after a stall, replay cadence (on a given clock)."""

from __future__ import annotations

import pytest

from signal_producer.core.pacing import Pacer


def test_unlimited_is_always_due_now() -> None:
    pacer = Pacer(start=100.0)
    assert [pacer.due(now=100.0 + i) for i in range(3)] == [100.0, 101.0, 102.0]


def test_target_rate_spaces_records_by_one_slot() -> None:
    pacer = Pacer(start=0.0, target_rps=4.0)
    # a fast source asks at t=0 each time: slots 0, 0.25, 0.5, 0.75
    assert [pacer.due(now=0.0) for _ in range(4)] == [0.0, 0.25, 0.5, 0.75]


def test_after_a_stall_only_a_bounded_burst_is_allowed() -> None:
    pacer = Pacer(start=0.0, target_rps=10.0, burst=5)
    pacer.due(now=0.0)
    # the source stalled for 100 s: at most 5 records go at once, then the rate applies again
    dues = [pacer.due(now=100.0) for _ in range(8)]
    assert dues[:6] == [100.0] * 6  # the floor is now - 5 slots, so slots up to now are due
    assert dues[6:] == pytest.approx([100.1, 100.2])


def test_replay_offsets_scaled_by_speedup() -> None:
    pacer = Pacer(start=10.0, speedup=60.0)
    assert pacer.due(now=10.0, offset_s=0.0) == 10.0
    assert pacer.due(now=10.0, offset_s=120.0) == 12.0  # 2 minutes of log at 60x = 2 s
    assert pacer.due(now=15.0, offset_s=120.0) == 15.0  # late already: send now
    assert Pacer(start=10.0).due(now=10.0, offset_s=3600.0) == 10.0  # speedup 0: ignore
