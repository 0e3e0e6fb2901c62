"""The Streamlit entry point: page setup, the sidebar's filters, navigation. Pages draw."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from signal_dashboard.settings import get_settings
from signal_dashboard.ui.context import CONTEXT_KEY, Context
from signal_dashboard.ui.sidebar import known_operators, render_sidebar
from signal_dashboard.wiring import client_for

_VIEWS = Path(__file__).parent / "views"


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
