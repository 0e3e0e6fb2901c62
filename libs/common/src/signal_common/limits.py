"""The metrics API's longest `from`..`to` range per granularity, which the dashboard must share.

The API refuses (422) a time-series request whose range is longer than its granularity's limit;
the dashboard offers only the granularities the API accepts for the chosen range. Both read the
defaults from here, and each lets its settings override them (`SIGNAL_API_RANGE_LIMITS_HOURS`,
`SIGNAL_DASHBOARD_RANGE_LIMITS_HOURS`: keep the two equal).

Each limit bounds the points of one series (one per window start) to about 3,000 or fewer:
past that an answer is more than a chart can show, and its scan of the partial rows is
expensive, with nothing gained.

- `1m`: 48 hours, 2,880 points.
- `5m`: 7 days, 2,016 points.
- `15m`: 31 days, 2,976 points.
- `1h`: 92 days, 2,208 points.
- `1d`: 731 days, 731 points: two years, one of them possibly a leap year.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

# Read-only: both services' settings copy it before merging their overrides into it.
DEFAULT_RANGE_LIMITS_HOURS: Mapping[str, int] = MappingProxyType(
    {
        "1m": 48,
        "5m": 24 * 7,
        "15m": 24 * 31,
        "1h": 24 * 92,
        "1d": 24 * 731,
    }
)
