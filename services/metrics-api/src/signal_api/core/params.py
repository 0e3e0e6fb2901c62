"""Validated request parameters: time ranges, granularities and filters."""

from __future__ import annotations

import datetime as dt
import enum
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from signal_api.core.errors import InvalidParameterError
from signal_common.lake import partition_values


class Granularity(enum.StrEnum):
    """Width of a time bucket."""

    M1 = "1m"
    M5 = "5m"
    M15 = "15m"
    H1 = "1h"
    D1 = "1d"

    @property
    def seconds(self) -> int:
        return _SECONDS[self.value]


_SECONDS = {"1m": 60, "5m": 300, "15m": 900, "1h": 3600, "1d": 86400}
GRANULARITIES: tuple[str, ...] = tuple(g.value for g in Granularity)

# Times outside these bounds are refused: they are typos, and they keep date arithmetic finite.
EARLIEST = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
LATEST = dt.datetime(2100, 1, 1, tzinfo=dt.UTC)
DEFAULT_RANGE = dt.timedelta(hours=1)


@dataclass(frozen=True)
class TimeRange:
    """A half-open UTC range [start, end) over window starts (or batch times)."""

    start: dt.datetime
    end: dt.datetime

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()

    def partition_bounds(self) -> tuple[str, int, str, int]:
        """(first dt, first hour, last dt, last hour) of the partitions the range touches."""
        lo_dt, lo_hour = partition_values(self.start)
        hi_dt, hi_hour = partition_values(self.end - dt.timedelta(microseconds=1))
        return lo_dt, lo_hour, hi_dt, hi_hour


def as_utc(value: dt.datetime) -> dt.datetime:
    """A timezone-aware UTC datetime (naive input is taken as UTC)."""
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def floor_minute(value: dt.datetime) -> dt.datetime:
    """The start of the minute containing `value`."""
    return value.replace(second=0, microsecond=0)


def instant(name: str, value: dt.datetime) -> dt.datetime:
    """A validated UTC instant given as parameter `name`."""
    try:
        utc = as_utc(value)
    except (OverflowError, ValueError) as exc:
        raise InvalidParameterError(name, f"parameter '{name}' is out of range") from exc
    if not EARLIEST <= utc < LATEST:
        raise InvalidParameterError(
            name,
            f"parameter '{name}' must be between {EARLIEST.isoformat()} and {LATEST.isoformat()}",
        )
    return utc


def time_range(
    start: dt.datetime | None,
    end: dt.datetime | None,
    *,
    now: dt.datetime,
    max_hours: float | None = None,
    granularity: str | None = None,
) -> TimeRange:
    """The validated [from, to) range; missing bounds default to the hour up to the current
    minute's end (stable within a minute, so default requests can be cached)."""
    for name, value in (("from", start), ("to", end)):
        if value is not None:
            instant(name, value)
    if end is None:
        end_utc = (
            floor_minute(as_utc(start) + DEFAULT_RANGE)
            if start is not None
            else floor_minute(as_utc(now)) + dt.timedelta(minutes=1)
        )
    else:
        end_utc = as_utc(end)
    start_utc = as_utc(start) if start is not None else end_utc - DEFAULT_RANGE
    if start_utc >= end_utc:
        raise InvalidParameterError("from", "parameter 'from' must be earlier than 'to'")
    result = TimeRange(start_utc, end_utc)
    if max_hours is not None and result.seconds > max_hours * 3600:
        what = f"granularity {granularity}" if granularity else "this endpoint"
        raise InvalidParameterError(
            "to",
            f"range from..to is {result.seconds / 3600:.6g} h; the limit for {what} is "
            f"{max_hours:g} h",
        )
    return result


def granularity_range(
    start: dt.datetime | None,
    end: dt.datetime | None,
    granularity: Granularity,
    *,
    now: dt.datetime,
    limits_hours: Mapping[str, int],
) -> TimeRange:
    """The validated range of a time-series request, limited per granularity."""
    return time_range(
        start,
        end,
        now=now,
        max_hours=limits_hours[granularity.value],
        granularity=granularity.value,
    )


def filter_values(
    name: str,
    values: Sequence[str] | None,
    *,
    max_values: int,
    max_length: int = 64,
    allowed: Sequence[str] | None = None,
) -> tuple[str, ...]:
    """The distinct, validated values of a repeatable filter (sorted, for stable cache keys)."""
    if not values:
        return ()
    distinct = sorted(set(values))
    if len(distinct) > max_values:
        raise InvalidParameterError(
            name, f"parameter '{name}' accepts at most {max_values} values, got {len(distinct)}"
        )
    for value in distinct:
        if allowed is not None and value not in allowed:
            raise InvalidParameterError(
                name,
                f"parameter '{name}' has invalid value {value!r}; allowed values: "
                f"{', '.join(allowed)}",
                allowed=allowed,
            )
        if not 1 <= len(value) <= max_length or not value.isprintable():
            raise InvalidParameterError(
                name,
                f"parameter '{name}' values must be 1-{max_length} printable characters",
            )
    return tuple(distinct)


def retry_after_seconds(wait_s: float) -> int:
    """A Retry-After value (whole seconds, at least 1)."""
    return max(1, math.ceil(wait_s))
