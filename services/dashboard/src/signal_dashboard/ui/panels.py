"""Streamlit building blocks shared by the pages: fetching with last-good data, the error
banner, tiles, and the footer under every panel (its CSV and the API request behind it)."""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import streamlit as st

from signal_dashboard.adapters.api_client import ApiError, ApiResponse
from signal_dashboard.core.shaping import (
    BandDefinition,
    Tile,
    band_definition,
    csv_bytes,
    data_as_of,
    format_age,
    meta_lines,
)
from signal_dashboard.settings import DashboardSettings

_LAST_GOOD_KEY = "signal_dashboard.last_good"
_LOG_LOCK = threading.Lock()
_STATE_COLOURS = {"ok": "#1a9641", "warn": "#e08a00", "alert": "#d7191c", "none": "#6b6b6b"}


@dataclass
class Fetched:
    """A panel's data: the answer to show (maybe an earlier one) and what went wrong, if any."""

    name: str
    response: ApiResponse | None
    error: ApiError | None = None

    @property
    def body(self) -> dict[str, Any]:
        """The JSON body to draw (empty when there never was an answer)."""
        return self.response.body if self.response else {}

    @property
    def is_last_good(self) -> bool:
        """True when the request failed and an earlier answer is shown instead."""
        return self.error is not None and self.response is not None


@dataclass
class PanelRun:
    """The fetches of one page run, for one banner at the top of the page."""

    fetched: list[Fetched] = field(default_factory=list)

    def fetch(self, name: str, call: Callable[[], ApiResponse]) -> Fetched:
        """Call the API; on failure fall back to this panel's last good answer."""
        store: dict[str, ApiResponse] = st.session_state.setdefault(_LAST_GOOD_KEY, {})
        try:
            response = call()
        except ApiError as exc:
            result = Fetched(name, store.get(name), exc)
        else:
            store[name] = response
            result = Fetched(name, response)
        self.fetched.append(result)
        return result

    def banner(self, *, now: dt.datetime) -> None:
        """One banner naming the failure and the time of the last good data (or nothing)."""
        failed = [f for f in self.fetched if f.error is not None]
        if failed:
            reason = str(failed[0].error)
            more = f" ({len(failed) - 1} more panel(s) failed too)" if len(failed) > 1 else ""
            good = [f.response.received_at for f in failed if f.response is not None]
            if good:
                oldest = min(good)
                shown = (
                    f"Showing the last good data, from {oldest:%H:%M:%S} UTC "
                    f"({format_age((now - oldest).total_seconds())} ago)."
                )
            else:
                shown = "No data has been received for these panels yet."
            st.error(f"**The metrics API is not answering as it should:** {reason}{more}. {shown}")
        stale = [
            f.name for f in self.fetched if f.error is None and f.body.get("meta", {}).get("stale")
        ]
        if stale:
            st.warning(
                "The API's query engine failed; it served its last good result for: "
                + ", ".join(stale)
            )
        as_of = data_as_of([f.body for f in self.fetched if f.response is not None])
        if as_of:
            st.caption(as_of)

    def bands(self, call: Callable[[], ApiResponse]) -> BandDefinition:
        """The API's quality-band definition (libs/common's defaults when it never answered)."""
        fetched = self.fetch("bands", call)
        return band_definition(fetched.body if fetched.response is not None else None)


def tiles(items: Sequence[Tile], *, columns: int | None = None) -> None:
    """Headline figures in a row; a tile's state colours its value."""
    cols = st.columns(columns or len(items))
    for i, tile in enumerate(items):
        with cols[i % len(cols)]:
            colour = _STATE_COLOURS.get(tile.state, _STATE_COLOURS["ok"])
            st.markdown(
                f"<div class='signal-tile' data-tile='{tile.label}' data-state='{tile.state}'>"
                f"<div style='font-size:0.85rem;color:#555'>{tile.label}</div>"
                f"<div class='signal-tile-value' style='font-size:1.6rem;font-weight:600;"
                f"color:{colour}'>{tile.value}</div></div>",
                unsafe_allow_html=True,
                help=tile.help or None,
            )


def footer(
    frame: pd.DataFrame,
    fetched: Fetched | Sequence[Fetched],
    *,
    base_url: str,
    filename: str,
    key: str,
) -> None:
    """Under a panel: its numbers as CSV (after `# ` lines of the answers' meta) and the
    request(s) that produced them."""
    sources = [fetched] if isinstance(fetched, Fetched) else list(fetched)
    header = [
        line
        for source in sources
        if source.response is not None
        for line in meta_lines(
            source.body,
            request=f"GET {source.response.request.url(base_url)}",
            received_at=source.response.received_at,
        )
    ]
    left, right = st.columns([1, 4])
    with left:
        st.download_button(
            "CSV",
            data=csv_bytes(frame, header=header),
            file_name=filename,
            mime="text/csv",
            key=f"csv-{key}",
            on_click="ignore",
            disabled=frame.empty,
            help="These numbers as CSV.",
        )
    with right:
        for source in sources:
            if source.response is not None:
                when = f"{source.response.received_at:%H:%M:%S} UTC"
                note = " (last good data)" if source.is_last_good else ""
                st.caption(f"`GET {source.response.request.url(base_url)}` · {when}{note}")


def log_render(settings: DashboardSettings, fetched: Fetched) -> None:
    """Append what a panel showed to the render log (off unless SIGNAL_DASHBOARD_RENDER_LOG)."""
    if settings.render_log is None or fetched.response is None:
        return
    rows = fetched.body.get("rows", [])
    buckets: dict[str, int] = {}
    for row in rows:
        if "bucket_start" in row and "event_count" in row:
            buckets[row["bucket_start"]] = buckets.get(row["bucket_start"], 0) + int(
                row["event_count"]
            )
    entry = {
        "rendered_at": dt.datetime.now(dt.UTC).isoformat(),
        "panel": fetched.name,
        "request": fetched.response.request.url(""),
        "received_at": fetched.response.received_at.isoformat(),
        "last_good": fetched.is_last_good,
        "bucket_counts": buckets,
    }
    with _LOG_LOCK, open(settings.render_log, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(entry) + "\n")
