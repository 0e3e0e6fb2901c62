"""The dashboard's range limits default to libs/common's, the definition the API serves with."""

from __future__ import annotations

from signal_common.limits import DEFAULT_RANGE_LIMITS_HOURS
from signal_dashboard import settings as dashboard_settings
from signal_dashboard.settings import DashboardSettings


def test_the_dashboard_limits_are_the_shared_definition() -> None:
    assert dashboard_settings.DEFAULT_RANGE_LIMITS_HOURS is DEFAULT_RANGE_LIMITS_HOURS
    assert DashboardSettings().range_limits_hours == dict(DEFAULT_RANGE_LIMITS_HOURS)


def test_an_override_merges_into_the_shared_defaults() -> None:
    limits = DashboardSettings(range_limits_hours={"1d": 24}).range_limits_hours
    assert limits == {**DEFAULT_RANGE_LIMITS_HOURS, "1d": 24}
    assert DEFAULT_RANGE_LIMITS_HOURS["1d"] == 17544
