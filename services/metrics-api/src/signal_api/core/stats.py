"""Sample-size rules and intervals for the figures the API serves (issue 24).

Pure: counts in, numbers out. The API computes every share from integer counts merged out of
the lake's partials, so its interval is exact too."""

from __future__ import annotations

import math
from typing import Literal

# The two-sided 95 % standard-normal quantile, Φ⁻¹(0.975).
Z_95 = 1.959963984540054

# Why a figure is withheld. `min_devices` joins it with the distinct-device sketches (#24).
Suppression = Literal["min_events"]

# Fewer samples than this and a figure is withheld (`SIGNAL_API_MIN_EVENTS`). 20: the normal and
# Wilson intervals are adequate from about n = 20 (Brown, Cai & DasGupta 2001, "Interval
# estimation for a binomial proportion", Statist. Sci. 16(2)); statistical-disclosure practice
# withholds areas below a minimum count (UN Global Working Group, Handbook on the use of mobile
# phone data for official statistics, 2019; UK ICO, Anonymisation code of practice, 2012), as
# Ookla and Opensignal publish an area only above minimum sample counts.
DEFAULT_MIN_EVENTS = 20


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


def suppression(events: int, *, min_events: int) -> Suppression | None:
    """Why a figure over `events` samples is withheld, or None when it is served."""
    return "min_events" if events < min_events else None
