"""The Streamlit entry point: page setup, the sidebar's filters, navigation. Pages draw."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import streamlit as st

from signal_dashboard.adapters.api_client import ApiError
from signal_dashboard.core.filters import Filters, aggregate_window
from signal_dashboard.core.shaping import operators_of
from signal_dashboard.settings import get_settings
from signal_dashboard.ui.context import CONTEXT_KEY, Client, Context
from signal_dashboard.ui.sidebar import render_sidebar
from signal_dashboard.wiring import client_for

_VIEWS = Path(__file__).parent / "views"
_OPERATORS_KEY = "signal_dashboard.operators"


def known_operators(client: Client, refresh_s: float) -> list[str]:
    """Operators seen over the last day, for the filter's options (refreshed at most every
    refresh_s; on an API error the previous list stays)."""
    cached = st.session_state.get(_OPERATORS_KEY)
    if cached and time.monotonic() - cached[0] < refresh_s:
        return list(cached[1])
    start, end = aggregate_window(Filters(range_key="24h"), dt.datetime.now(dt.UTC))
    try:
        names = operators_of(client.signal_quality(start, end).body)
    except ApiError:
        return list(cached[1]) if cached else []
    st.session_state[_OPERATORS_KEY] = (time.monotonic(), names)
    return names


def main() -> None:
    """Build the page: settings, client, filters, then the selected page."""
    st.set_page_config(
        page_title="Signal Stream", page_icon=":material/signal_cellular_alt:", layout="wide"
    )
    settings = get_settings()
    client = client_for(settings)
    pages = [
        st.Page(
            _VIEWS / "overview.py", title="Overview", icon=":material/monitoring:", default=True
        ),
        st.Page(
            _VIEWS / "coverage.py", title="Coverage map", icon=":material/map:", url_path="coverage"
        ),
        st.Page(
            _VIEWS / "alerts.py",
            title="Alerts",
            icon=":material/notifications_active:",
            url_path="alerts",
        ),
        st.Page(
            _VIEWS / "pipeline.py",
            title="Pipeline health",
            icon=":material/settings_input_antenna:",
            url_path="pipeline",
        ),
    ]
    page = st.navigation(pages)
    filters = render_sidebar(settings, known_operators(client, settings.refresh_s))
    st.sidebar.caption(f"Data: metrics API at `{client.base_url}` · times in UTC")
    st.session_state[CONTEXT_KEY] = Context(settings, client, filters)
    page.run()


main()
