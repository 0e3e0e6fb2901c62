"""The sidebar's filters as data: parsing from / writing to URL query parameters, time windows.

A view is a shareable link: every filter lives in the URL (`?range=6h&gran=5m&op=Orange`), and
`filters_from_query` turns any URL back into valid filters (a bad value falls back to its
default and is reported, never raised).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

PRESET_RANGES: dict[str, dt.timedelta] = {
    "15m": dt.timedelta(minutes=15),
    "1h": dt.timedelta(hours=1),
    "6h": dt.timedelta(hours=6),
    "24h": dt.timedelta(hours=24),
}
CUSTOM = "custom"
RANGE_CHOICES: tuple[str, ...] = (*PRESET_RANGES, CUSTOM)
RANGE_LABELS: dict[str, str] = {
    "15m": "last 15 min",
    "1h": "last hour",
    "6h": "last 6 hours",
    "24h": "last 24 hours",
    CUSTOM: "custom",
}
GRANULARITY_WIDTHS: dict[str, dt.timedelta] = {
    "1m": dt.timedelta(minutes=1),
    "5m": dt.timedelta(minutes=5),
    "15m": dt.timedelta(minutes=15),
    "1h": dt.timedelta(hours=1),
    "1d": dt.timedelta(days=1),
}
# Aggregate endpoints (coverage, signal quality, pipeline) accept at most this range (the API's
# MAX_AGGREGATE_RANGE_HOURS).
MAX_AGGREGATE_RANGE = dt.timedelta(days=31)
# Aim for about this many buckets per series when choosing a default granularity.
_TARGET_BUCKETS = 120
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


class FilterError(ValueError):
    """A filter value the dashboard cannot use (the message says which and why)."""


@dataclass(frozen=True)
class Filters:
    """Everything the sidebar selects. Empty tuples mean "all"."""

    range_key: str = "1h"
    start: dt.datetime | None = None  # custom range only, UTC
    end: dt.datetime | None = None  # custom range only, UTC
    granularity: str = "1m"
    operators: tuple[str, ...] = ()
    network_types: tuple[str, ...] = ()
    postal_codes: tuple[str, ...] = ()
    paused: bool = False
    warnings: tuple[str, ...] = field(default=(), compare=False)


def span_of(filters: Filters) -> dt.timedelta:
    """Length of the selected range."""
    if filters.range_key == CUSTOM and filters.start and filters.end:
        return filters.end - filters.start
    return PRESET_RANGES.get(filters.range_key, PRESET_RANGES["1h"])


def allowed_granularities(span: dt.timedelta, limits_hours: Mapping[str, int]) -> tuple[str, ...]:
    """Granularities the API accepts for a range this long and that give more than one bucket."""
    allowed = tuple(
        name
        for name, width in GRANULARITY_WIDTHS.items()
        if width < span and span <= dt.timedelta(hours=limits_hours.get(name, 0))
    )
    if allowed:
        return allowed
    # a range shorter than a minute: the finest granularity is the only sensible one
    return ("1m",) if span <= dt.timedelta(hours=limits_hours.get("1m", 48)) else ()


def default_granularity(span: dt.timedelta, limits_hours: Mapping[str, int]) -> str:
    """The finest allowed granularity giving at most about 120 buckets (15 min → 1m, 24 h → 15m)."""
    allowed = allowed_granularities(span, limits_hours)
    if not allowed:
        raise FilterError(f"no granularity covers a range of {span}")
    for name in allowed:
        if span / GRANULARITY_WIDTHS[name] <= _TARGET_BUCKETS:
            return name
    return allowed[-1]


def floor_to(moment: dt.datetime, width: dt.timedelta) -> dt.datetime:
    """The start of the epoch-aligned bucket of `width` holding `moment` (the API's buckets)."""
    return moment - (moment - _EPOCH) % width


def window(filters: Filters, now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """The [from, to) range of window starts to request.

    A preset range ends with the current minute (its partial window included, like the API's
    default) and starts on a bucket boundary of the granularity, so the first bucket is whole.
    """
    if filters.range_key == CUSTOM and filters.start and filters.end:
        return filters.start, filters.end
    end = floor_to(now, dt.timedelta(minutes=1)) + dt.timedelta(minutes=1)
    width = GRANULARITY_WIDTHS.get(filters.granularity, GRANULARITY_WIDTHS["1m"])
    return floor_to(end - span_of(filters), width), end


def aggregate_window(filters: Filters, now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """The window for range-only endpoints, clipped to the API's 31-day aggregate limit."""
    start, end = window(filters, now)
    return max(start, end - MAX_AGGREGATE_RANGE), end


def parse_instant(text: str) -> dt.datetime:
    """An ISO-8601 instant; naive means UTC (as in the API)."""
    try:
        moment = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise FilterError(f"{text!r} is not an ISO-8601 time (e.g. 2026-11-24T08:00)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC)


def format_instant(moment: dt.datetime) -> str:
    """The compact UTC form used in links and requests: 2026-11-24T08:00:00Z."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def split_codes(text: str) -> tuple[str, ...]:
    """Postal codes typed in the search box: separated by commas or spaces, de-duplicated."""
    seen: dict[str, None] = {}
    for part in text.replace(",", " ").split():
        seen.setdefault(part.strip(), None)
    return tuple(seen)


def _values(params: Mapping[str, str | Sequence[str]], key: str) -> tuple[str, ...]:
    raw = params.get(key)
    if raw is None:
        return ()
    items = [raw] if isinstance(raw, str) else list(raw)
    result: dict[str, None] = {}
    for item in items:
        for part in item.split(","):
            if part.strip():
                result.setdefault(part.strip(), None)
    return tuple(result)


def _first(params: Mapping[str, str | Sequence[str]], key: str) -> str | None:
    values = _values(params, key)
    return values[0] if values else None


def filters_from_query(
    params: Mapping[str, str | Sequence[str]],
    *,
    limits_hours: Mapping[str, int],
    known_network_types: Sequence[str],
) -> Filters:
    """Filters from URL query parameters; anything invalid falls back and is listed in warnings."""
    warnings: list[str] = []
    range_key = _first(params, "range") or "1h"
    start = end = None
    if range_key not in RANGE_CHOICES:
        warnings.append(f"unknown range {range_key!r}; showing the last hour")
        range_key = "1h"
    if range_key == CUSTOM:
        try:
            start = parse_instant(_first(params, "from") or "")
            end = parse_instant(_first(params, "to") or "")
            if end <= start:
                raise FilterError("the custom range ends before it starts")
            if end - start > dt.timedelta(hours=max(limits_hours.values())):
                raise FilterError("the custom range is longer than the API allows")
        except FilterError as exc:
            warnings.append(f"{exc}; showing the last hour")
            range_key, start, end = "1h", None, None
    filters = Filters(range_key=range_key, start=start, end=end)
    span = span_of(filters)
    allowed = allowed_granularities(span, limits_hours)
    granularity = _first(params, "gran")
    if granularity is None or granularity not in allowed:
        if granularity is not None:
            warnings.append(
                f"granularity {granularity!r} is not available for this range "
                f"(allowed: {', '.join(allowed)})"
            )
        granularity = default_granularity(span, limits_hours)
    networks = _values(params, "net")
    unknown = [n for n in networks if n not in known_network_types]
    if unknown:
        warnings.append(f"unknown network type(s) {', '.join(unknown)} ignored")
        networks = tuple(n for n in networks if n in known_network_types)
    paused = (_first(params, "live") or "1") in {"0", "off", "false"}
    return replace(
        filters,
        granularity=granularity,
        operators=_values(params, "op"),
        network_types=networks,
        postal_codes=_values(params, "pc"),
        paused=paused,
        warnings=tuple(warnings),
    )


def filters_to_query(filters: Filters) -> dict[str, str | list[str]]:
    """URL query parameters of the filters (defaults left out, so links stay short)."""
    query: dict[str, str | list[str]] = {"range": filters.range_key, "gran": filters.granularity}
    if filters.range_key == CUSTOM and filters.start and filters.end:
        query["from"] = format_instant(filters.start)
        query["to"] = format_instant(filters.end)
    if filters.operators:
        query["op"] = list(filters.operators)
    if filters.network_types:
        query["net"] = list(filters.network_types)
    if filters.postal_codes:
        query["pc"] = list(filters.postal_codes)
    if filters.paused:
        query["live"] = "0"
    return query
