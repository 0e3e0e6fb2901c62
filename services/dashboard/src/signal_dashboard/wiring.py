"""Build the dashboard's collaborators from settings: the metrics API client (the one place an
ApiClient is made), shared by every browser session of a server process."""

from __future__ import annotations

import streamlit as st

from signal_dashboard.adapters.api_client import ApiClient
from signal_dashboard.settings import DashboardSettings
from signal_dashboard.ui.context import Client

# Session key: tests put a fake client here before the first run.
CLIENT_KEY = "signal_dashboard.client"


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
