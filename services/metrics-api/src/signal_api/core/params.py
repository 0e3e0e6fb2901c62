"""Validated request parameters: time ranges, granularities and filters."""

from __future__ import annotations

import datetime as dt
import enum
import math
import re
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

# A request's date-time: RFC 3339 `date-time` text (section 5.6), with a year 2000-2099 as
# written (other years are typos, and the bound keeps date arithmetic finite), no leap second
# and at most 9 fraction digits. One declaration: the server parses with it (`parse_instant`)
# and the contract states it as the parameters' `pattern` (`RFC3339_PATTERN`).
_RFC3339 = re.compile(
    r"^(?P<year>20[0-9]{2})-(?P<month>0[1-9]|1[0-2])-(?P<day>0[1-9]|[12][0-9]|3[01])[Tt]"
    r"(?P<hour>[01][0-9]|2[0-3]):(?P<minute>[0-5][0-9]):(?P<second>[0-5][0-9])"
    r"(?:\.(?P<fraction>[0-9]{1,9}))?"
    r"(?P<offset>[Zz]|(?P<sign>[+-])(?P<off_hour>[01][0-9]|2[0-3]):(?P<off_minute>[0-5][0-9]))$"
)
# The same expression without group names (ECMA-262, as JSON Schema reads a `pattern`).
RFC3339_PATTERN = re.sub(r"\?P<\w+>", "", _RFC3339.pattern)
# The UTC instants that text can name (a year 2000-2099 in any offset); datetimes given in code
# are held to them too.
EARLIEST = dt.datetime(1999, 12, 31, tzinfo=dt.UTC)
LATEST = dt.datetime(2100, 1, 2, tzinfo=dt.UTC)
DEFAULT_RANGE = dt.timedelta(hours=1)
# The precision the queries bind instants at (core/queries.py writes TIMESTAMP text with
# milliseconds, Athena's TIMESTAMP(3)). Request bounds are rounded *up* to it: for data stored
# at that precision, t >= from and t < to hold exactly when t >= ceil(from) and t < ceil(to),
# so the half-open range selects what was asked and the response echoes the bounds used.
QUERY_PRECISION = dt.timedelta(milliseconds=1)
_PRECISION_US = QUERY_PRECISION // dt.timedelta(microseconds=1)

# A filter value: 1..max_length characters, none of them a control character (Unicode Cc).
# The server checks it with this pattern and the contract declares the same one.
FILTER_VALUE_PATTERN = r"^[^\u0000-\u001f\u007f-\u009f]+$"
OPERATOR_MAX_LENGTH = 64
POSTAL_CODE_MAX_LENGTH = 16
_FILTER_VALUE = re.compile(FILTER_VALUE_PATTERN)


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


def at_query_precision(value: dt.datetime) -> dt.datetime:
    """`value` rounded up to `QUERY_PRECISION` (unchanged when it is already a multiple)."""
    extra = value.microsecond % _PRECISION_US
    return value + dt.timedelta(microseconds=_PRECISION_US - extra) if extra else value


def parse_instant(text: str) -> dt.datetime:
    """The UTC instant of RFC 3339 text (`_RFC3339`), rounded up to `QUERY_PRECISION` from the
    digits as written; ValueError names what is wrong (numbers and other formats included)."""
    match = _RFC3339.fullmatch(text)
    if match is None:
        raise ValueError(
            "must be an RFC 3339 date-time with an offset and a year 2000-2099, "
            "e.g. 2026-11-23T07:00:00Z"
        )
    g = match.groupdict()
    offset = dt.timedelta(0)
    if g["sign"] is not None:
        offset = dt.timedelta(hours=int(g["off_hour"]), minutes=int(g["off_minute"]))
        offset = -offset if g["sign"] == "-" else offset
    year, month, day, hour, minute, second = (
        int(g[k]) for k in ("year", "month", "day", "hour", "minute", "second")
    )
    try:
        moment = dt.datetime(year, month, day, hour, minute, second, tzinfo=dt.timezone(offset))
    except ValueError as exc:  # a day the month does not have
        raise ValueError(f"is not a date-time: {exc}") from None
    nanos = int((g["fraction"] or "0").ljust(9, "0"))
    steps = -(-nanos // (_PRECISION_US * 1000))  # ceiling division: rounded up
    return (moment + steps * QUERY_PRECISION).astimezone(dt.UTC)


def instant(name: str, value: dt.datetime) -> dt.datetime:
    """A validated UTC instant given as parameter `name`, at the precision queries bind."""
    try:
        utc = at_query_precision(as_utc(value))
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
    """The validated [from, to) range at the precision queries bind (`QUERY_PRECISION`, both
    bounds rounded up); missing bounds default to the hour up to the current minute's end
    (stable within a minute, so default requests can be cached)."""
    given_start = instant("from", start) if start is not None else None
    given_end = instant("to", end) if end is not None else None
    if given_end is not None:
        end_utc = given_end
    elif given_start is not None:
        end_utc = floor_minute(given_start + DEFAULT_RANGE)
    else:
        end_utc = floor_minute(as_utc(now)) + dt.timedelta(minutes=1)
    start_utc = given_start if given_start is not None else end_utc - DEFAULT_RANGE
    if start_utc >= end_utc:
        raise InvalidParameterError(
            "from",
            "parameter 'from' must be earlier than 'to' "
            f"(both are rounded up to {QUERY_PRECISION.total_seconds() * 1000:g} ms)",
        )
    result = TimeRange(start_utc, end_utc)
    if max_hours is not None and result.seconds > max_hours * 3600:
        what = f"granularity {granularity}" if granularity else "this endpoint"
        raise InvalidParameterError(
            "to",
            f"range from..to is {result.seconds / 3600:.6g} h; the limit for {what} is "
            f"{max_hours:g} h",
        )
    return result


def whole_windows(window: TimeRange, length: dt.timedelta) -> TimeRange:
    """`window` widened to whole windows of `length` (from floored, to ceiled, on the UTC epoch):
    what a table whose partial rows cover `length` each can answer exactly."""
    step = int(length.total_seconds() * 1_000_000)
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)

    def us(moment: dt.datetime) -> int:
        return (moment - epoch) // dt.timedelta(microseconds=1)

    start = us(window.start) // step * step
    end = -(-us(window.end) // step) * step
    return TimeRange(
        epoch + dt.timedelta(microseconds=start), epoch + dt.timedelta(microseconds=end)
    )


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
    """The distinct, validated values of a repeatable filter (sorted, for stable cache keys).

    The count is of the values as sent (repeats included), as the contract's `maxItems` says."""
    if not values:
        return ()
    if len(values) > max_values:
        raise InvalidParameterError(
            name, f"parameter '{name}' accepts at most {max_values} values, got {len(values)}"
        )
    distinct = sorted(set(values))
    for value in distinct:
        if allowed is not None and value not in allowed:
            raise InvalidParameterError(
                name,
                f"parameter '{name}' has invalid value {value!r}; allowed values: "
                f"{', '.join(allowed)}",
                allowed=allowed,
            )
        if len(value) > max_length or not _FILTER_VALUE.fullmatch(value):
            raise InvalidParameterError(
                name,
                f"parameter '{name}' values must be 1-{max_length} characters, "
                "none a control character",
            )
    return tuple(distinct)


def retry_after_seconds(wait_s: float) -> int:
    """A Retry-After value (whole seconds, at least 1)."""
    return max(1, math.ceil(wait_s))


MAX_PERCENTILES = 7
"""Most percentiles one request may ask (p5/p10/p25/p50/p75/p90/p95, the issue's set)."""
_PERCENTILE_ITEM = (
    r"(?:100(?:\.0{1,3})?|[1-9]\d?(?:\.\d{1,3})?|0\.(?:[1-9]\d{0,2}|0[1-9]\d?|00[1-9]))"
)
PERCENTILES_PATTERN = f"^{_PERCENTILE_ITEM}(?:,{_PERCENTILE_ITEM}){{0,{MAX_PERCENTILES - 1}}}$"
"""What `percentiles=` accepts, exactly: 1 to MAX_PERCENTILES comma-separated numbers in
(0, 100], at most 3 decimals, no leading zeros or spaces. The contract publishes this pattern and
the server applies the same one, so the two are equally strict."""
_PERCENTILE = re.compile(_PERCENTILE_ITEM)


def percentiles(text: str | None) -> tuple[float, ...]:
    """The percentiles a `percentiles=10,50,90` parameter asks for, each in (0, 100], in the
    order given, repeats dropped; () when absent. A 422 names the first bad value."""
    if text is None:
        return ()
    items = text.split(",")
    for item in items:
        if not _PERCENTILE.fullmatch(item):
            raise InvalidParameterError(
                "percentiles",
                f"parameter 'percentiles': {item[:16]!r} is not a number in (0, 100] with at "
                "most 3 decimals (e.g. percentiles=10,50,90)",
            )
    if len(items) > MAX_PERCENTILES:
        raise InvalidParameterError(
            "percentiles", f"parameter 'percentiles': at most {MAX_PERCENTILES} values"
        )
    values: list[float] = []
    for item in items:
        if float(item) not in values:
            values.append(float(item))
    return tuple(values)


def percentile_key(p: float) -> str:
    """The key a percentile is served under: p50, p2.5."""
    return f"p{p:g}"
