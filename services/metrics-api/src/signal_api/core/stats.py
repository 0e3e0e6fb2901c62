"""Sample-size rules and intervals for the figures the API serves (issue 24).

Pure: counts in, numbers out. The API computes every share from integer counts merged out of
the lake's partials, so its interval is exact too."""

from __future__ import annotations

import math
from typing import Literal

# The two-sided 95 % standard-normal quantile, Φ⁻¹(0.975).
Z_95 = 1.959963984540054

# Why a figure is withheld: too few events, or too few distinct devices (#24).
Suppression = Literal["min_events", "min_devices"]

# Fewer samples than this and a figure is withheld (`SIGNAL_API_MIN_EVENTS`). 20: the normal and
# Wilson intervals are adequate from about n = 20 (Brown, Cai & DasGupta 2001, "Interval
# estimation for a binomial proportion", Statist. Sci. 16(2)); statistical-disclosure practice
# withholds areas below a minimum count (UN Global Working Group, Handbook on the use of mobile
# phone data for official statistics, 2019; UK ICO, Anonymisation code of practice, 2012), as
# Ookla and Opensignal publish an area only above minimum sample counts.
DEFAULT_MIN_EVENTS = 20

# Fewer distinct devices than this (the HLL estimate, rounded) and a figure is withheld
# (`SIGNAL_API_MIN_DEVICES`). 5: Ookla shows an area only with scans from several devices, and
# disclosure guidance counts people, not records (UN Handbook on the use of mobile phone data
# for official statistics, 2019; UK ICO Anonymisation code, 2012): many events from one or two
# phones describe those phones.
DEFAULT_MIN_DEVICES = 5


def wilson_interval(successes: int, trials: int, *, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval (low, high) for `successes` out of `trials` (trials > 0).

    Unlike the normal (Wald) interval it stays inside [0, 1] and does not collapse to a point
    at a share of 0 or 1 (Wilson 1927, JASA 22(158); Newcombe 1998, Statist. Med. 17, method 3).
    """
    if trials <= 0:
        raise ValueError(f"trials must be positive, got {trials}")
    if not 0 <= successes <= trials:
        raise ValueError(f"successes must be in [0, {trials}], got {successes}")
    p = successes / trials
    z2 = z * z
    denominator = 1.0 + z2 / trials
    centre = (p + z2 / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1.0 - p) / trials + z2 / (4 * trials * trials)) / denominator
    # the bounds are exactly 0 and 1 at p = 0 and p = 1; rounding must not push them past
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == trials else min(1.0, centre + half)
    return low, high


def normal_mean_interval(
    count: int, total: float, squares: float, *, z: float = Z_95
) -> tuple[float, float]:
    """The normal 95 % interval (low, high) of a mean from its count, sum and sum of squares:
    mean ± z·s/√n with the sample variance s² = (Σx² − (Σx)²/n) / (n − 1) (count ≥ 2).

    Adequate at n ≥ 20 (the central limit theorem; min_events guarantees it for served rows).
    Integer sums (signal dBm) are combined exactly before the one division, so no cancellation
    loses digits; a variance that rounding pushes below 0 is 0."""
    if count < 2:
        raise ValueError(f"a sample variance needs at least 2 values, got {count}")
    if isinstance(total, int) and isinstance(squares, int):
        variance = (count * squares - total * total) / (count * (count - 1))
    else:
        variance = (squares - total * total / count) / (count - 1)
    mean = total / count
    half = z * math.sqrt(max(variance, 0.0) / count)
    return mean - half, mean + half


def suppression(
    events: int, *, min_events: int, devices: int | None = None, min_devices: int = 0
) -> Suppression | None:
    """Why a figure over `events` samples from `devices` distinct devices is withheld, or None
    when it is served. `devices` None (unknown: partials written before the sketches) cannot
    be checked, so only min_events applies to it."""
    if events < min_events:
        return "min_events"
    if devices is not None and devices < min_devices:
        return "min_devices"
    return None
