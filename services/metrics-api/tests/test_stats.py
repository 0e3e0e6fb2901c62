"""The Wilson and normal intervals against independent computations, and the suppression rule."""

from __future__ import annotations

import statistics
from collections.abc import Callable

import numpy as np
import pytest

from signal_api.core.stats import (
    DEFAULT_MIN_DEVICES,
    DEFAULT_MIN_EVENTS,
    Z_95,
    normal_mean_interval,
    suppression,
    wilson_interval,
)

Oracle = Callable[[int, int], tuple[float, float]]


def test_z_is_the_normal_975_quantile() -> None:
    assert abs(Z_95 - statistics.NormalDist().inv_cdf(0.975)) < 1e-12


@pytest.mark.parametrize(
    ("successes", "trials"),
    [(0, 1), (1, 1), (0, 20), (1, 29), (3, 20), (10, 20), (15, 148), (81, 263), (7, 6000),
     (5999, 6000), (123_456, 1_000_000)],
)  # fmt: skip
def test_wilson_matches_the_score_test_roots(
    wilson_oracle: Oracle, successes: int, trials: int
) -> None:
    low, high = wilson_interval(successes, trials)
    exp_low, exp_high = wilson_oracle(successes, trials)
    assert low == pytest.approx(exp_low, abs=1e-9)
    assert high == pytest.approx(exp_high, abs=1e-9)
    assert 0.0 <= low <= successes / trials <= high <= 1.0


@pytest.mark.parametrize(
    ("successes", "trials", "low", "high"),
    [(81, 263, 0.2553, 0.3662), (15, 148, 0.0624, 0.1605), (0, 20, 0.0, 0.1611),
     (1, 29, 0.0061, 0.1718)],
)  # fmt: skip
def test_wilson_matches_newcombes_published_examples(
    successes: int, trials: int, low: float, high: float
) -> None:
    # Newcombe (1998), Statist. Med. 17:857-872, Table II, method 3 (score, no correction)
    got = wilson_interval(successes, trials)
    assert got == pytest.approx((low, high), abs=5e-5)


def test_the_bounds_are_exact_at_zero_and_all() -> None:
    assert wilson_interval(0, 50)[0] == 0.0
    assert wilson_interval(50, 50)[1] == 1.0


@pytest.mark.parametrize(("successes", "trials"), [(0, 0), (-1, 5), (6, 5)])
def test_impossible_counts_are_refused(successes: int, trials: int) -> None:
    with pytest.raises(ValueError, match="must be"):
        wilson_interval(successes, trials)


def test_suppression_below_min_events_only() -> None:
    assert DEFAULT_MIN_EVENTS == 20
    assert suppression(19, min_events=20) == "min_events"
    assert suppression(20, min_events=20) is None
    assert suppression(0, min_events=1) == "min_events"
    assert suppression(1, min_events=1) is None


@pytest.mark.parametrize("seed", range(6))
def test_normal_interval_matches_numpy_over_the_values(seed: int) -> None:
    """From (n, Σx, Σx²) as the partials merge them: mean ± z·std(ddof=1)/√n of the values."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(20, 5000))
    dbm = rng.integers(-150, -19, n)  # integers, as signal_dbm: summed exactly
    metres = np.round(rng.uniform(0.5, 80, n), 3)  # doubles, as gps_precision_m
    for values, total, squares in (
        (dbm, int(dbm.sum()), int((dbm * dbm).sum())),
        (metres, float(metres.sum()), float((metres * metres).sum())),
    ):
        half = Z_95 * float(np.std(values, ddof=1)) / np.sqrt(n)
        low, high = normal_mean_interval(n, total, squares)
        assert low == pytest.approx(float(values.mean()) - half, abs=1e-9)
        assert high == pytest.approx(float(values.mean()) + half, abs=1e-9)


def test_normal_interval_of_equal_values_is_a_point_and_needs_two() -> None:
    assert normal_mean_interval(20, -1800, 20 * 90 * 90) == (-90.0, -90.0)
    with pytest.raises(ValueError, match="at least 2"):
        normal_mean_interval(1, -90, 8100)


def test_suppression_below_min_devices_when_devices_are_known() -> None:
    assert DEFAULT_MIN_DEVICES == 5
    rule = {"min_events": DEFAULT_MIN_EVENTS, "min_devices": DEFAULT_MIN_DEVICES}
    assert suppression(500, devices=4, **rule) == "min_devices"
    assert suppression(500, devices=5, **rule) is None
    assert suppression(19, devices=3, **rule) == "min_events"  # the count is checked first
    assert suppression(500, devices=None, **rule) is None  # unknown devices: not checkable
