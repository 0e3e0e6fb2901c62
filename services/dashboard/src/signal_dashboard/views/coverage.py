"""Coverage map: postal codes as points (colour: signal band, size: events) and the worst list."""

from __future__ import annotations

import datetime as dt

import streamlit as st

from signal_dashboard import charts
from signal_dashboard.core import shaping
from signal_dashboard.ui import context, panels


def render(ctx: context.Context) -> None:
    """Draw the map and the table of worst postal codes."""
    st.title("Coverage map")

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
