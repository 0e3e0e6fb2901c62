"""The sidebar's filters, kept in the URL (`st.query_params`) so a view is a shareable link.

The session state is the source of truth while a session lives (page navigation clears the
URL's parameters, so every run writes them back); a new session (a shared link, a browser
reload) starts from the URL.
"""

from __future__ import annotations

import datetime as dt
import time

import streamlit as st

from signal_common.schema import NetworkType
from signal_dashboard.adapters.api_client import ApiError
from signal_dashboard.core.filters import (
    CUSTOM,
    RANGE_CHOICES,
    RANGE_LABELS,
    FilterError,
    Filters,
    aggregate_window,
    allowed_granularities,
    default_granularity,
    filters_from_query,
    filters_to_query,
    format_instant,
    parse_instant,
    span_of,
    split_codes,
)
from signal_dashboard.core.shaping import operators_of
from signal_dashboard.settings import DashboardSettings
from signal_dashboard.ui.context import Client

NETWORK_TYPES: tuple[str, ...] = tuple(n.value for n in NetworkType)
_LOADED = "f_loaded"
# Session key of the operator filter's options: (monotonic time read, names).
_OPERATORS_KEY = "signal_dashboard.operators"
PAGE_PARAMS = ("areas", "focus")
"""Query parameters a page reads itself (the Coverage page's hexagon view and the cell a worst
cell's link focuses), kept as they came when the sidebar rewrites the URL's filters."""


def _query_params() -> dict[str, list[str]]:
    params = st.query_params
    return {key: params.get_all(key) for key in params}


def _load_from_url(settings: DashboardSettings) -> None:
    """First run of a session: the widgets start from the URL's filters."""
    filters = filters_from_query(
        _query_params(),
        limits_hours=settings.range_limits_hours,
        known_network_types=NETWORK_TYPES,
    )
    now = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
    state = st.session_state
    state["f_range"] = filters.range_key
    state["f_from"] = format_instant(filters.start or now - dt.timedelta(hours=24))
    state["f_to"] = format_instant(filters.end or now)
    state["f_gran"] = filters.granularity
    state["f_ops"] = list(filters.operators)
    state["f_nets"] = list(filters.network_types)
    state["f_pc"] = ", ".join(filters.postal_codes)
    state["f_live"] = not filters.paused
    state["f_warnings"] = list(filters.warnings)
    state[_LOADED] = True


def _range_changed() -> None:
    # a new range gets its own default granularity (chosen below, once the span is known)
    st.session_state["f_gran"] = None


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


def render_sidebar(settings: DashboardSettings, known_operators: list[str]) -> Filters:
    """Draw the filters and return them; the URL is updated to match."""
    state = st.session_state
    if not state.get(_LOADED):
        _load_from_url(settings)
    sidebar = st.sidebar
    for warning in state.get("f_warnings", []):
        sidebar.warning(f"Link filter ignored: {warning}")
    sidebar.selectbox(
        "Time range",
        RANGE_CHOICES,
        key="f_range",
        format_func=RANGE_LABELS.__getitem__,
        on_change=_range_changed,
    )
    start = end = None
    if state["f_range"] == CUSTOM:
        sidebar.text_input("From (UTC, ISO-8601)", key="f_from")
        sidebar.text_input("To (UTC, ISO-8601)", key="f_to")
        try:
            start, end = parse_instant(state["f_from"]), parse_instant(state["f_to"])
            if end <= start:
                raise FilterError("the range ends before it starts")
            if end - start > dt.timedelta(hours=max(settings.range_limits_hours.values())):
                raise FilterError("the range is longer than the API allows")
        except FilterError as exc:
            sidebar.error(f"Custom range: {exc}. Showing the last hour.")
            start = end = None
    range_key = state["f_range"] if start is not None or state["f_range"] != CUSTOM else "1h"
    span = span_of(Filters(range_key=range_key, start=start, end=end))
    allowed = allowed_granularities(span, settings.range_limits_hours)
    if state.get("f_gran") not in allowed:
        state["f_gran"] = default_granularity(span, settings.range_limits_hours)
    sidebar.selectbox(
        "Granularity", allowed, key="f_gran", help="Only those the API allows for the range."
    )
    operator_options = sorted(set(known_operators) | set(state.get("f_ops", [])))
    sidebar.multiselect("Operators", operator_options, key="f_ops", placeholder="all operators")
    sidebar.multiselect(
        "Network types", NETWORK_TYPES, key="f_nets", placeholder="all network types"
    )
    sidebar.text_input(
        "Postal codes",
        key="f_pc",
        placeholder="e.g. 47014, 47015",
        help="Exact postal codes, separated by commas: coverage, status and alerts show "
        "only these.",
    )
    sidebar.toggle(
        "Live",
        key="f_live",
        help=f"Refresh the data every {settings.refresh_s:g} s; off pauses the panels.",
    )
    filters = Filters(
        range_key=range_key,
        start=start,
        end=end,
        granularity=state["f_gran"],
        operators=tuple(state.get("f_ops", [])),
        network_types=tuple(state.get("f_nets", [])),
        postal_codes=split_codes(state.get("f_pc", "")),
        paused=not state.get("f_live", True),
    )
    current = _query_params()
    wanted = {**filters_to_query(filters), **{k: current[k] for k in PAGE_PARAMS if k in current}}
    if current != {k: v if isinstance(v, list) else [v] for k, v in wanted.items()}:
        st.query_params.from_dict(wanted)
    return filters
