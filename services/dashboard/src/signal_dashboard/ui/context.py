"""What every page needs (settings, the API client, the filters), kept in the session; the
client itself is built in wiring.py."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Protocol

import streamlit as st

from signal_dashboard.adapters.api_client import ApiResponse
from signal_dashboard.core.filters import Filters, aggregate_window, window
from signal_dashboard.settings import DashboardSettings

# Session key of the run's Context (streamlit_app.py stores it, pages read it).
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
        self,
        start: dt.datetime,
        end: dt.datetime,
        *,
        postal_codes: tuple[str, ...] = (),
        percentiles: tuple[int, ...] = (),
    ) -> ApiResponse: ...
    def coverage_h3(self, start: dt.datetime, end: dt.datetime, *, res: int) -> ApiResponse: ...
    def worst_cells(self, start: dt.datetime, end: dt.datetime, *, top: int) -> ApiResponse: ...
    def bands(self) -> ApiResponse: ...
    def alerts_active(self, *, postal_codes: tuple[str, ...] = ()) -> ApiResponse: ...
    def alerts_history(
        self, start: dt.datetime, end: dt.datetime, *, postal_codes: tuple[str, ...] = ()
    ) -> ApiResponse: ...
    def alert_rules(self) -> ApiResponse: ...


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


def current() -> Context:
    """The context streamlit_app.py stored for this run (pages call this first)."""
    context = st.session_state.get(CONTEXT_KEY)
    if not isinstance(context, Context):
        raise RuntimeError(
            "open the dashboard through streamlit_app.py (streamlit run …/streamlit_app.py)"
        )
    return context
