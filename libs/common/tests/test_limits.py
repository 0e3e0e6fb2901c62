"""The shared range limits: one per granularity, each keeping a series at most ~3,000 points."""

from __future__ import annotations

import pytest

from signal_common.limits import DEFAULT_RANGE_LIMITS_HOURS

# minutes per point of each granularity (a point per window start)
STEP_MINUTES = {"1m": 1, "5m": 5, "15m": 15, "1h": 60, "1d": 24 * 60}


def test_every_granularity_has_its_documented_limit() -> None:
    assert dict(DEFAULT_RANGE_LIMITS_HOURS) == {
        "1m": 48,
        "5m": 168,
        "15m": 744,
        "1h": 2208,
        "1d": 17544,
    }


def test_no_series_runs_past_three_thousand_points() -> None:
    points = {g: hours * 60 // STEP_MINUTES[g] for g, hours in DEFAULT_RANGE_LIMITS_HOURS.items()}
    assert points == {"1m": 2880, "5m": 2016, "15m": 2976, "1h": 2208, "1d": 731}
    assert max(points.values()) <= 3000


def test_a_coarser_granularity_reaches_further_back() -> None:
    hours = [DEFAULT_RANGE_LIMITS_HOURS[g] for g in STEP_MINUTES]
    assert hours == sorted(hours)


def test_the_shared_definition_cannot_be_changed_in_place() -> None:
    with pytest.raises(TypeError):
        DEFAULT_RANGE_LIMITS_HOURS["1m"] = 1  # type: ignore[index]
