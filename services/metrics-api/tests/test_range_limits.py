"""The API's range limits default to libs/common's, the definition the dashboard shares."""

from __future__ import annotations

from signal_api import settings as api_settings
from signal_api.settings import ApiSettings
from signal_common.limits import DEFAULT_RANGE_LIMITS_HOURS


def test_the_api_limits_are_the_shared_definition() -> None:
    assert api_settings.DEFAULT_RANGE_LIMITS_HOURS is DEFAULT_RANGE_LIMITS_HOURS
    assert ApiSettings().range_limits_hours == dict(DEFAULT_RANGE_LIMITS_HOURS)
