"""Filters: URL round trips, bad links falling back, windows and allowed granularities."""

from __future__ import annotations

import datetime as dt

import pytest

from signal_dashboard.core.filters import (
    Filters,
    aggregate_window,
    allowed_granularities,
    default_granularity,
    filters_from_query,
    filters_to_query,
    split_codes,
    window,
)
from signal_dashboard.settings import DEFAULT_RANGE_LIMITS_HOURS

LIMITS = DEFAULT_RANGE_LIMITS_HOURS
NETS = ("2G", "3G", "4G", "5G")
H = dt.timedelta(hours=1)


def parse(params: dict[str, str | list[str]]) -> Filters:
    return filters_from_query(params, limits_hours=LIMITS, known_network_types=NETS)


@pytest.mark.parametrize(
    ("span", "allowed", "default"),
    [
        (dt.timedelta(minutes=15), ("1m", "5m"), "1m"),
        (H, ("1m", "5m", "15m"), "1m"),
        (6 * H, ("1m", "5m", "15m", "1h"), "5m"),
        (24 * H, ("1m", "5m", "15m", "1h"), "15m"),
        (72 * H, ("5m", "15m", "1h", "1d"), "1h"),
        (40 * 24 * H, ("1h", "1d"), "1d"),
    ],
)
def test_granularities_follow_the_api_limits(
    span: dt.timedelta, allowed: tuple[str, ...], default: str
) -> None:
    assert allowed_granularities(span, LIMITS) == allowed
    assert default_granularity(span, LIMITS) == default


def test_url_round_trip_keeps_every_filter() -> None:
    filters = Filters(
        range_key="custom",
        start=dt.datetime(2026, 11, 20, 8, tzinfo=dt.UTC),
        end=dt.datetime(2026, 11, 21, 8, tzinfo=dt.UTC),
        granularity="1h",
        operators=("Orange", "Vodafone"),
        network_types=("4G",),
        postal_codes=("47014", "47015"),
        paused=True,
    )
    query = filters_to_query(filters)
    assert query["op"] == ["Orange", "Vodafone"]
    assert query["from"] == "2026-11-20T08:00:00Z"
    assert query["live"] == "0"
    assert parse(query) == filters


def test_bad_link_values_fall_back_with_warnings() -> None:
    filters = parse({"range": "3w", "gran": "1d", "net": ["4G", "6G"], "pc": "47014,47015"})
    assert filters.range_key == "1h"
    assert filters.granularity == "1m"  # 1d is not offered for an hour
    assert filters.network_types == ("4G",)
    assert filters.postal_codes == ("47014", "47015")
    text = " | ".join(filters.warnings)
    assert "3w" in text
    assert "1d" in text
    assert "6G" in text


def test_custom_range_that_is_backwards_or_too_long_falls_back() -> None:
    backwards = parse({"range": "custom", "from": "2026-11-21T00:00", "to": "2026-11-20T00:00"})
    assert backwards.range_key == "1h"
    assert "ends before" in backwards.warnings[0]
    too_long = parse({"range": "custom", "from": "2020-01-01", "to": "2026-01-01"})
    assert too_long.range_key == "1h"
    assert "longer" in too_long.warnings[0]
    garbage = parse({"range": "custom", "from": "yesterday", "to": "now"})
    assert "ISO-8601" in garbage.warnings[0]


def test_preset_window_ends_with_the_current_minute_and_starts_on_a_bucket() -> None:
    now = dt.datetime(2026, 11, 24, 10, 7, 31, tzinfo=dt.UTC)
    start, end = window(Filters(range_key="6h", granularity="15m"), now)
    assert end == dt.datetime(2026, 11, 24, 10, 8, tzinfo=dt.UTC)
    assert start == dt.datetime(2026, 11, 24, 4, 0, tzinfo=dt.UTC)  # 04:08 floored to 15 min


def test_aggregate_window_is_clipped_to_31_days() -> None:
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    end = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    filters = Filters(range_key="custom", start=start, end=end, granularity="1d")
    assert aggregate_window(filters, end) == (end - dt.timedelta(days=31), end)


def test_split_codes_accepts_commas_and_spaces_once_each() -> None:
    assert split_codes(" 47014, 47015 47014,,") == ("47014", "47015")
