"""Coverage map: postal codes as points (colour: signal band, size: events) or H3 hexagons
(colour: the median event's band; grey: withheld), and the worst list of either."""

from __future__ import annotations

import datetime as dt

import streamlit as st

from signal_dashboard import charts
from signal_dashboard.core import shaping
from signal_dashboard.ui import context, panels

POSTAL_CODES = "Postal codes"
HEXAGONS = "H3 hexagons"
_RESOLUTION_TEXT = {9: "resolution 9 (about 0.1 km²)", 7: "resolution 7 (about 5.2 km²)"}
WORST_CELLS = 10


def render(ctx: context.Context) -> None:
    """Draw the map and the table of worst postal codes or hexagons."""
    st.title("Coverage map")
    linked = st.query_params.get("areas") == "hexagons"  # a worst cell's map link
    areas = st.radio(
        "Areas",
        [POSTAL_CODES, HEXAGONS],
        index=1 if linked else 0,
        horizontal=True,
        key="coverage_areas",
        help="Postal codes as points at their events' centroid, or H3 hexagon cells (v4).",
    )
    if areas == HEXAGONS:
        _hexagons(ctx)
    else:
        _postal_codes(ctx)


def _hexagons(ctx: context.Context) -> None:
    res = st.radio(
        "H3 resolution",
        shaping.H3_RESOLUTIONS,
        format_func=_RESOLUTION_TEXT.__getitem__,
        horizontal=True,
        key="coverage_res",
    )

    @st.fragment(run_every=ctx.run_every)
    def live() -> None:
        client = ctx.client
        start, end = ctx.aggregate_window()
        run = panels.PanelRun()
        cells = run.fetch("coverage_h3", lambda: client.coverage_h3(start, end, res=res))
        worst = run.fetch("worst_cells", lambda: client.worst_cells(start, end, top=WORST_CELLS))
        definition = run.bands(client.bands)
        run.banner(now=dt.datetime.now(dt.UTC))
        frame = shaping.h3_table(cells.body)
        left, right = st.columns([3, 2])
        with left:
            if frame.empty:
                st.info("No events in this range yet.")
            focus = st.query_params.get("focus")
            st.pydeck_chart(charts.h3_deck(frame, focus), height=520, key="hexagons")
            legend = " ".join(
                f"<span style='color:{css}'>⬢</span> {band}"
                for band, css, _ in charts.band_legend(definition.map_bands)
            )
            source = shaping.definition_note(definition)
            st.markdown(
                "<small>Colour: the quality band of each cell's median event (every event "
                f"banded by its own network type's thresholds, {source}) · {legend} · "
                "<span style='color:#a0a0a0'>⬢</span> withheld. No base map is "
                "loaded, so the map works offline.</small>",
                unsafe_allow_html=True,
            )
        with right:
            st.subheader("Worst hexagons")
            table = frame[
                [
                    "h3_cell", "out_of_service_share", "out_of_service_ci", "avg_signal_dbm",
                    "signal_p50", "events", "devices", "band", "note",
                ]
            ]  # fmt: skip
            st.dataframe(
                shaping.grey_withheld(table),
                hide_index=True,
                height=400,
                column_config={
                    "h3_cell": "H3 cell",
                    "out_of_service_share": st.column_config.NumberColumn(
                        "out of service", format="percent"
                    ),
                    "out_of_service_ci": "95 % interval",
                    "avg_signal_dbm": st.column_config.NumberColumn(
                        "avg signal (dBm)", format="%.1f"
                    ),
                    "signal_p50": st.column_config.NumberColumn("median signal (dBm)", format="%d"),
                    "events": st.column_config.NumberColumn("events", format="%d"),
                    "devices": st.column_config.NumberColumn("devices (±3.25 %)", format="%d"),
                    "band": "median band",
                    "note": "withheld",
                },
            )
            if (frame["note"] != "").any():
                rule = shaping.withheld_rule(cells.body.get("meta"))
                st.caption(
                    "Grey cells: the API withholds a hexagon's figures when they stand on "
                    f"{rule}; the cell stays on the map, grey, with its counts."
                )
        panels.footer(
            frame.drop(columns=["colour"]), cells, base_url=client.base_url,
            filename=f"coverage_h3_res{res}.csv", key="coverage-h3",
        )  # fmt: skip
        st.subheader("Worst serving cells")
        cells_frame = shaping.worst_cells_table(worst.body)
        if worst.response is not None:
            st.caption(
                f"The {WORST_CELLS} serving cells (cell_id) with the highest out-of-service "
                "share, then the weakest p10 signal, of the events that report a cell; withheld "
                f"cells last ({worst.body.get('withheld', 0)} of {worst.body.get('cells', 0)} "
                "cells). Each map link opens its resolution-9 hexagon here."
            )
            st.dataframe(
                cells_frame[
                    [
                        "rank",
                        "operator",
                        "network_type",
                        "cell_id",
                        "out_of_service_share",
                        "out_of_service_ci",
                        "signal_p10",
                        "signal_p50",
                        "events",
                        "devices",
                        "note",
                        "map",
                    ]
                ],
                hide_index=True,
                column_config={
                    "network_type": "RAT",
                    "cell_id": st.column_config.NumberColumn("cell id", format="%d"),
                    "out_of_service_share": st.column_config.NumberColumn(
                        "out of service", format="percent"
                    ),
                    "out_of_service_ci": "95 % interval",
                    "signal_p10": st.column_config.NumberColumn("p10 signal (dBm)", format="%d"),
                    "signal_p50": st.column_config.NumberColumn("median (dBm)", format="%d"),
                    "events": st.column_config.NumberColumn("events", format="%d"),
                    "devices": st.column_config.NumberColumn("devices", format="%d"),
                    "note": "withheld",
                    "map": st.column_config.LinkColumn(
                        "map", display_text="hexagon", help="Its resolution-9 cell on this map"
                    ),
                },
            )
        panels.footer(
            cells_frame, worst, base_url=client.base_url, filename="worst_cells.csv",
            key="worst-cells",
        )  # fmt: skip

    live()


def _postal_codes(ctx: context.Context) -> None:
    @st.fragment(run_every=ctx.run_every)
    def live() -> None:
        client = ctx.client
        start, end = ctx.aggregate_window()
        run = panels.PanelRun()
        coverage = run.fetch(
            "coverage",
            lambda: client.coverage(
                start,
                end,
                postal_codes=ctx.filters.postal_codes,
                percentiles=shaping.COVERAGE_PERCENTILES,
            ),
        )
        definition = run.bands(client.bands)
        run.banner(now=dt.datetime.now(dt.UTC))
        frame = shaping.coverage_table(coverage.body, definition.map_bands)
        left, right = st.columns([3, 2])
        with left:
            if frame.empty:
                st.info("No events in this range yet.")
            st.pydeck_chart(charts.coverage_deck(frame), height=520, key="map")
            legend = " ".join(
                f"<span style='color:{css}'>●</span> {band} ({text})"
                for band, css, text in charts.band_legend(definition.map_bands)
            )
            st.markdown(
                f"<small>Colour: average signal band (LTE {definition.map_bands.measure} bands "
                f"of {shaping.definition_note(definition)}) · {legend} · size: events. No base "
                "map is loaded, so the map works offline.</small>",
                unsafe_allow_html=True,
            )
        with right:
            st.subheader("Worst postal codes")
            served = frame[frame["note"] == ""]
            if not served.empty:
                st.markdown(shaping.worst_code_line(served.iloc[0]))
            table = frame[
                [
                    "postal_code", "out_of_service_share", "out_of_service_ci",
                    "avg_signal_dbm", "signal_p50", "signal_p10", "event_count", "devices",
                    "band", "note",
                ]
            ]  # fmt: skip
            st.dataframe(
                shaping.grey_withheld(table),
                hide_index=True,
                height=400,
                column_config={
                    "postal_code": "postal code",
                    "out_of_service_share": st.column_config.NumberColumn(
                        "out of service", format="percent"
                    ),
                    "out_of_service_ci": "95 % interval",
                    "avg_signal_dbm": st.column_config.NumberColumn(
                        "avg signal (dBm)", format="%.1f"
                    ),
                    "signal_p50": st.column_config.NumberColumn("median signal (dBm)", format="%d"),
                    "signal_p10": st.column_config.NumberColumn("p10 signal (dBm)", format="%d"),
                    "event_count": st.column_config.NumberColumn("events", format="%d"),
                    "devices": st.column_config.NumberColumn("devices (±3.25 %)", format="%d"),
                    "note": "withheld",
                },
            )
            if (frame["note"] != "").any():
                rule = shaping.withheld_rule(coverage.body.get("meta"))
                st.caption(
                    "Grey rows: the API withholds a postal code's figures, centroid included, "
                    f"when they stand on {rule}; they are not on the map."
                )
            st.plotly_chart(charts.out_of_service_bars(frame), key="chart-oos")
            st.caption(
                "Out of service per postal code, with its Wilson 95 % interval as error bars."
            )
        panels.footer(
            frame.drop(columns=["colour"]), coverage, base_url=client.base_url,
            filename="coverage.csv", key="coverage",
        )  # fmt: skip
        with st.expander("Band and coverage-hole thresholds per network type, with sources"):
            st.caption(f"From {shaping.definition_note(definition)}.")
            st.dataframe(shaping.bands_table(definition), hide_index=True)

    live()


render(context.current())
