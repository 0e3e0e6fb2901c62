"""Pipeline health: throughput, freshness, quarantine by reason, duplicates, batches."""

from __future__ import annotations

import datetime as dt

import streamlit as st

from signal_dashboard import charts
from signal_dashboard.core import shaping
from signal_dashboard.ui import context, panels


def render(ctx: context.Context) -> None:
    """Draw the pipeline's figures over the selected range."""
    st.title("Pipeline health")

    @st.fragment(run_every=ctx.run_every)
    def live() -> None:
        client = ctx.client
        start, end = ctx.aggregate_window()
        run = panels.PanelRun()
        pipeline = run.fetch("pipeline", lambda: client.pipeline(start, end))
        run.banner(now=dt.datetime.now(dt.UTC))
        tiles = shaping.pipeline_tiles(pipeline.body)
        panels.tiles(tiles[:6])
        panels.tiles(tiles[6:], columns=6)
        panels.footer(
            shaping.tiles_table(tiles), pipeline, base_url=client.base_url,
            filename="pipeline.csv", key="pipeline",
        )  # fmt: skip
        st.subheader("Quarantined records by reason")
        reasons = shaping.quarantine_reasons(pipeline.body)
        st.plotly_chart(charts.quarantine_bars(reasons), key="chart-quarantine")
        panels.footer(
            reasons, pipeline, base_url=client.base_url,
            filename="quarantine_by_reason.csv", key="reasons",
        )  # fmt: skip

    live()


render(context.current())
