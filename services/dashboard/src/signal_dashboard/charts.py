"""Chart builders: shaped tables → plotly figures and the coverage map's pydeck deck.

Plotly is the dashboard's one chart library: hover shows the exact figures of every point
(engineers read values, not just shapes), it draws time series, stacked bars and grouped
breakdowns alike, and a figure is plain data (`fig.to_dict()`), so tests check what is drawn
without a browser. The map is pydeck because a map layer is what pydeck is for.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import pydeck as pdk

from signal_common.quality import BAND_NAMES, QualityBands
from signal_dashboard.core.shaping import BAND_COLOURS, MAP_BANDS, band_ranges, map_view

STATUS_COLOURS = {
    "IN_SERVICE": "#2b83ba",
    "OUT_OF_SERVICE": "#d7191c",
    "EMERGENCY_ONLY": "#fdae61",
    "POWER_OFF": "#969696",
}
_BAND_CSS = {band: "rgb({},{},{})".format(*rgb) for band, rgb in BAND_COLOURS.items()}


def _layout(fig: go.Figure, *, y_title: str, height: int = 340) -> go.Figure:
    fig.update_layout(
        height=height,
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        legend={"orientation": "h", "y": -0.2},
        yaxis_title=y_title,
        xaxis_title=None,
        hovermode="x unified",
    )
    return fig


def _empty(message: str) -> go.Figure:
    fig = go.Figure()
    fig.add_annotation(text=message, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    fig.update_layout(height=200, xaxis_visible=False, yaxis_visible=False)
    return fig


def _translucent(colour: str, alpha: float = 0.18) -> str:
    """A plotly colour ("#rrggbb" or "rgb(r,g,b)") as rgba with `alpha`."""
    if colour.startswith("#") and len(colour) == 7:
        r, g, b = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    else:
        r, g, b = (int(float(v)) for v in colour[colour.index("(") + 1 : -1].split(",")[:3])
    return f"rgba({r},{g},{b},{alpha})"


def _interval_bands(fig: go.Figure, frame: pd.DataFrame, *, by: str, value: str) -> go.Figure:
    """Add, per line of `fig` (one per `by`), its 95 % interval as a translucent band between
    `<value>_ci_low` and `<value>_ci_high`, in the line's colour and legend group. Withheld
    points have no interval: the band has a gap there, as the line has."""
    low, high = f"{value}_ci_low", f"{value}_ci_high"
    if low not in frame.columns or frame[[low, high]].isna().all().all():
        return fig
    for line in list(fig.data):
        part = frame[frame[by] == line.name]
        colour = _translucent(line.line.color)
        common = {
            "x": part["bucket_start"],
            "mode": "lines",
            "line": {"width": 0},
            "legendgroup": line.legendgroup,
            "showlegend": False,
            "hoverinfo": "skip",
        }
        fig.add_trace(go.Scatter(y=part[low], name=f"{line.name} 95 % low", **common))
        fig.add_trace(
            go.Scatter(
                y=part[high],
                name=f"{line.name} 95 % interval",
                fill="tonexty",
                fillcolor=colour,
                **common,
            )
        )
    return fig


def signal_by_operator(frame: pd.DataFrame) -> go.Figure:
    """A line per operator: average signal (dBm) per bucket, with its 95 % interval as a band."""
    if frame.empty:
        return _empty("no signal data in this range")
    fig = px.line(
        frame,
        x="bucket_start",
        y="avg_signal_dbm",
        color="operator",
        markers=len(frame["bucket_start"].unique()) < 30,
        hover_data={
            "event_count": True,
            "devices": True,
            "avg_signal_dbm_ci_low": ":.2f",
            "avg_signal_dbm_ci_high": ":.2f",
            "min_signal_dbm": True,
            "max_signal_dbm": True,
        },
    )
    _interval_bands(fig, frame, by="operator", value="avg_signal_dbm")
    return _layout(fig, y_title="avg signal (dBm, 95 % band)")


def gps_by_provider(frame: pd.DataFrame) -> go.Figure:
    """A line per location provider: average GPS precision (m) per bucket, with its 95 %
    interval as a band."""
    if frame.empty:
        return _empty("no GPS data in this range")
    fig = px.line(
        frame,
        x="bucket_start",
        y="avg_precision_m",
        color="provider",
        markers=len(frame["bucket_start"].unique()) < 30,
        hover_data={
            "event_count": True,
            "devices": True,
            "avg_precision_m_ci_low": ":.2f",
            "avg_precision_m_ci_high": ":.2f",
            "avg_satellites": True,
        },
    )
    _interval_bands(fig, frame, by="provider", value="avg_precision_m")
    return _layout(fig, y_title="avg precision (m, 95 % band)")


def status_stacks(frame: pd.DataFrame) -> go.Figure:
    """Stacked bars: events per status for each of the worst postal codes (worst on the left)."""
    if frame.empty:
        return _empty("no status data in this range")
    order = list(dict.fromkeys(frame["postal_code"]))
    fig = px.bar(
        frame,
        x="postal_code",
        y="event_count",
        color="status",
        color_discrete_map=STATUS_COLOURS,
        category_orders={"postal_code": order},
    )
    fig.update_layout(barmode="stack", hovermode="closest")
    fig.update_xaxes(type="category")
    return _layout(fig, y_title="events")


def quality_bars(frame: pd.DataFrame) -> go.Figure:
    """100 % stacked bars of quality-band shares per operator × network type."""
    if frame.empty:
        return _empty("no quality data in this range")
    frame = frame.dropna(subset=["share"])  # withheld rows (too few events) have no shares
    if frame.empty:
        return _empty("no operator × network with enough events in this range")
    data = frame.assign(group=frame["operator"] + " · " + frame["network_type"])
    fig = px.bar(
        data,
        x="share",
        y="group",
        color="band",
        orientation="h",
        color_discrete_map=_BAND_CSS,
        category_orders={"band": list(BAND_NAMES)},
        hover_data={"event_count": True, "share": ":.1%"},
    )
    fig.update_layout(barmode="stack", hovermode="closest")
    fig.update_xaxes(tickformat=".0%", range=[0, 1])
    height = max(260, 24 * data["group"].nunique() + 80)
    return _layout(fig, y_title="", height=height)


def postal_series(frame: pd.DataFrame, postal_code: str) -> go.Figure:
    """One postal code's events per status per bucket (stacked)."""
    if frame.empty:
        return _empty(f"no recent events for {postal_code}")
    fig = px.bar(
        frame,
        x="bucket_start",
        y="event_count",
        color="status",
        color_discrete_map=STATUS_COLOURS,
        hover_data={"out_of_service_share": ":.1%"},
    )
    fig.update_layout(barmode="stack")
    return _layout(fig, y_title=f"events in {postal_code}")


def quarantine_bars(frame: pd.DataFrame) -> go.Figure:
    """Quarantined records per reason."""
    if frame.empty:
        return _empty("nothing quarantined in this range")
    fig = px.bar(frame, x="reason", y="records", hover_data={"rate": ":.3%"})
    fig.update_layout(hovermode="closest")
    return _layout(fig, y_title="records", height=280)


def coverage_deck(frame: pd.DataFrame) -> pdk.Deck:
    """Postal codes as points coloured by signal band and sized by events; no base map.

    `map_style=None` draws no tiles, so the map needs no internet: the points (with their
    tooltip) are the information, on a plain background.
    """
    frame = frame.dropna(subset=["latitude", "longitude"])  # withheld: no centroid to draw
    lat, lon, zoom = map_view(frame)
    data = frame.assign(
        avg_signal_text=frame["avg_signal_dbm"].map(lambda v: f"{v:.1f}"),
        oos_text=frame["out_of_service_share"].map(lambda v: f"{v:.1%}"),
    )
    layer = pdk.Layer(
        "ScatterplotLayer",
        data=data,
        get_position="[longitude, latitude]",
        get_fill_color="colour",
        get_radius="radius_m",
        radius_min_pixels=4,
        radius_max_pixels=60,
        opacity=0.8,
        stroked=True,
        get_line_color=[40, 40, 40],
        line_width_min_pixels=1,
        pickable=True,
    )
    labels = pdk.Layer(
        "TextLayer",
        data=data,
        get_position="[longitude, latitude]",
        get_text="postal_code",
        get_size=12,
        get_color=[30, 30, 30],
        get_pixel_offset=[0, -18],
    )
    return pdk.Deck(
        layers=[layer, labels],
        initial_view_state=pdk.ViewState(latitude=lat, longitude=lon, zoom=zoom),
        map_style=None,
        tooltip={
            "html": "<b>{postal_code}</b><br/>{event_count} events<br/>avg signal "
            "{avg_signal_text} dBm ({band})<br/>out of service {oos_text}",
        },
    )


def h3_deck(frame: pd.DataFrame, focus: str | None = None) -> pdk.Deck:
    """H3 hexagons (an `h3_table`) filled by their median event's band, grey where the API
    withheld the figures; no base map (works offline, as `coverage_deck`). With `focus`, a cell
    of the frame (a worst cell's link), the view centres on it, close in."""
    lat, lon, zoom = map_view(frame)
    focused = frame[frame["h3_cell"] == focus] if focus else frame.iloc[0:0]
    if not focused.empty:
        lat, lon, zoom = (
            float(focused["latitude"].iloc[0]),
            float(focused["longitude"].iloc[0]),
            14.0,
        )
    data = frame.assign(
        avg_signal_text=[
            "withheld" if pd.isna(v) else f"{v:.1f} dBm" for v in frame["avg_signal_dbm"]
        ],
        oos_text=["withheld" if pd.isna(v) else f"{v:.1%}" for v in frame["out_of_service_share"]],
        why=[note or "served" for note in frame["note"]],
    )
    layer = pdk.Layer(
        "H3HexagonLayer",
        data=data,
        get_hexagon="h3_cell",
        get_fill_color="colour",
        get_line_color=[40, 40, 40],
        line_width_min_pixels=1,
        stroked=True,
        filled=True,
        extruded=False,
        opacity=0.75,
        pickable=True,
    )
    return pdk.Deck(
        layers=[layer],
        initial_view_state=pdk.ViewState(latitude=lat, longitude=lon, zoom=zoom),
        map_style=None,
        tooltip={
            "html": "<b>{h3_cell}</b><br/>{events} events, {devices} devices<br/>avg signal "
            "{avg_signal_text} ({band})<br/>out of service {oos_text}<br/>{why}",
        },
    )


def out_of_service_bars(frame: pd.DataFrame) -> go.Figure:
    """Out-of-service share per postal code (a `coverage_table`) with its Wilson 95 % interval
    as error bars; codes the API withheld are left out (the table lists them, greyed)."""
    served = frame.dropna(subset=["out_of_service_share"])
    if served.empty:
        return _empty("no postal code with enough events in this range")
    share = served["out_of_service_share"]
    fig = go.Figure(
        go.Bar(
            x=served["postal_code"],
            y=share,
            error_y={
                "type": "data",
                "array": served["out_of_service_share_ci_high"] - share,
                "arrayminus": share - served["out_of_service_share_ci_low"],
                "visible": True,
            },
            customdata=served[["out_of_service_ci", "event_count"]],
            hovertemplate="%{x}: %{y:.1%} out of service<br>95 % interval %{customdata[0]}"
            "<br>%{customdata[1]:,} events<extra></extra>",
        )
    )
    fig.update_xaxes(type="category")
    fig.update_yaxes(tickformat=".0%", rangemode="tozero")
    return _layout(fig, y_title="out of service (95 % interval)", height=280)


def band_legend(bands: QualityBands = MAP_BANDS) -> list[tuple[str, str, str]]:
    """(band, CSS colour, range text) of the map's colours, from `bands` (the API's LTE
    bands on the Coverage page)."""
    ranges = band_ranges(bands)
    return [(band, _BAND_CSS[band], ranges[band]) for band in BAND_NAMES]


ALERT_STATE_COLOURS = {"pending": "#fdae61", "firing": "#d7191c"}


def alert_timeline(
    frame: pd.DataFrame, *, start: dt.datetime | None = None, end: dt.datetime | None = None
) -> go.Figure:
    """A row per alert (area · rule): its pending and firing spans from the evaluator's
    transitions (gaps are inactive or resolved), over [start, end) when given."""
    if frame.empty:
        return _empty("no alert transitions in this range")
    data = frame.assign(correction=frame["correction"].map({True: "yes", False: "no"}))
    fig = px.timeline(
        data,
        x_start="start",
        x_end="end",
        y="area",
        color="state",
        color_discrete_map=ALERT_STATE_COLOURS,
        category_orders={"state": list(ALERT_STATE_COLOURS)},
        hover_data={"since": True, "correction": True, "summary": True},
    )
    episodes = data.drop_duplicates(["area", "since"])
    fig.add_scatter(
        x=episodes["since"],
        y=episodes["area"],
        mode="markers",
        name="episode start (since)",
        marker={"symbol": "diamond", "size": 9, "color": "#333333"},
    )  # a span starts when a cycle recorded it; the episode began at its first breaching window
    fig.update_yaxes(autorange="reversed")
    if start is not None and end is not None:
        fig.update_xaxes(range=[start, end])
    height = max(200, 36 * data["area"].nunique() + 110)
    fig = _layout(fig, y_title="", height=height)
    fig.update_layout(
        hovermode="closest",
        legend={"orientation": "h", "y": 1.02, "yanchor": "bottom", "title": None},
    )
    return fig
