"""What every page needs (settings, the API client, the filters), kept in the session."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Protocol

import streamlit as st

from signal_dashboard.adapters.api_client import ApiClient, ApiResponse
from signal_dashboard.core.filters import Filters, aggregate_window, window
from signal_dashboard.settings import DashboardSettings

# Session keys. Tests put a fake client under CLIENT_KEY before the first run.
CLIENT_KEY = "signal_dashboard.client"
CONTEXT_KEY = "signal_dashboard.context"


class Client(Protocol):
    """What the pages call: the API client's typed routes (a test fake implements the same)."""

    base_url: str

    def summary(self) -> ApiResponse: ...
    def pipeline(self, start: dt.datetime, end: dt.datetime) -> ApiResponse: ...
    def signal_strength(
        self,
        start: dt.datetime,
        end: dt.datetime,
        granularity: str,
        *,
        operators: tuple[str, ...] = (),
        network_types: tuple[str, ...] = (),
        by_network_type: bool = True,
    ) -> ApiResponse: ...
    def gps_precision(
        self, start: dt.datetime, end: dt.datetime, granularity: str
    ) -> ApiResponse: ...
    def status_counts(
        self,
        start: dt.datetime,
        end: dt.datetime,
        granularity: str,
        *,
        postal_codes: tuple[str, ...] = (),
        top: int | None = None,
    ) -> ApiResponse: ...
    def signal_quality(
        self,
        start: dt.datetime,
        end: dt.datetime,
        *,
        operators: tuple[str, ...] = (),
        network_types: tuple[str, ...] = (),
    ) -> ApiResponse: ...
    def coverage(
        self, start: dt.datetime, end: dt.datetime, *, postal_codes: tuple[str, ...] = ()
    ) -> ApiResponse: ...
    def alerts(self, *, postal_codes: tuple[str, ...] = ()) -> ApiResponse: ...


@dataclass(frozen=True)
class Context:
    """One run's view of the app: settings, client and the filters the sidebar chose."""

    settings: DashboardSettings
    client: Client
    filters: Filters

    @property
    def run_every(self) -> float | None:
        """Refresh interval of live panels (None while paused)."""
        return None if self.filters.paused else self.settings.refresh_s

    def window(self) -> tuple[dt.datetime, dt.datetime]:
        """[from, to) of the time-series panels, computed now."""
        return window(self.filters, dt.datetime.now(dt.UTC))

    def aggregate_window(self) -> tuple[dt.datetime, dt.datetime]:
        """[from, to) of the range-only panels (at most 31 days), computed now."""
        return aggregate_window(self.filters, dt.datetime.now(dt.UTC))


@st.cache_resource(show_spinner=False)
def _shared_client(
    base_url: str, api_key: str | None, timeout_s: float, retries: int, backoff_base_s: float
) -> ApiClient:
    # one connection pool per server process, shared by every browser session (thread-safe)
    return ApiClient(
        base_url,
        api_key=api_key,
        timeout_s=timeout_s,
        retries=retries,
        backoff_base_s=backoff_base_s,
    )


def client_for(settings: DashboardSettings) -> Client:
    """The session's client: a test's fake if one was put in the session, else the shared one."""
    injected = st.session_state.get(CLIENT_KEY)
    if injected is not None:
        return injected
    return _shared_client(
        settings.api_url,
        settings.api_key.get_secret_value() if settings.api_key else None,
        settings.request_timeout_s,
        settings.retries,
        settings.backoff_base_s,
    )


def current() -> Context:
    """The context app.py stored for this run (pages call this first)."""
    context = st.session_state.get(CONTEXT_KEY)
    if not isinstance(context, Context):
        raise RuntimeError("open the dashboard through app.py (streamlit run …/app.py)")
    return context
