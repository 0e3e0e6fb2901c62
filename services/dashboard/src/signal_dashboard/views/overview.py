"""Overview: headline tiles, signal by operator, GPS precision, worst postal codes, quality."""

from __future__ import annotations

import datetime as dt

import streamlit as st

from signal_dashboard import charts
from signal_dashboard.core import shaping
from signal_dashboard.ui import context, panels


def render(ctx: context.Context) -> None:
    """Draw the live panels (they refresh every ctx.run_every seconds)."""
    st.title("Network overview")

    @st.fragment(run_every=ctx.run_every)
    def live() -> None:
        f, client, settings = ctx.filters, ctx.client, ctx.settings
        start, end = ctx.window()
        agg_start, agg_end = ctx.aggregate_window()
        run = panels.PanelRun()
        summary = run.fetch("summary", client.summary)
        pipeline = run.fetch("pipeline", lambda: client.pipeline(agg_start, agg_end))
        signal = run.fetch(
            "signal_strength",
            lambda: client.signal_strength(
                start, end, f.granularity, operators=f.operators,
                network_types=f.network_types, by_network_type=False,
            ),
        )  # fmt: skip
        gps = run.fetch("gps_precision", lambda: client.gps_precision(start, end, f.granularity))
        status = run.fetch(
            "status_counts",
            lambda: client.status_counts(
                start, end, f.granularity, postal_codes=f.postal_codes,
                top=settings.top_postal_codes,
            ),
        )  # fmt: skip
        quality = run.fetch(
            "signal_quality",
            lambda: client.signal_quality(
                agg_start, agg_end, operators=f.operators, network_types=f.network_types
            ),
        )
        definition = run.bands(client.bands)
        now = dt.datetime.now(dt.UTC)
        run.banner(now=now)

        tiles = shaping.overview_tiles(
            summary.body, pipeline.body, now=now,
            warn_s=settings.fresh_warn_s, alert_s=settings.fresh_alert_s,
        )  # fmt: skip
        panels.tiles(tiles)
        if summary.body.get("window_start"):
            st.caption(
                f"Events/min, average signal and out of service: the latest complete minute, "
                f"{summary.body['window_start'][11:16]} UTC."
            )
        panels.footer(
            shaping.tiles_table(tiles), [summary, pipeline], base_url=client.base_url,
            filename="overview_tiles.csv", key="tiles",
        )  # fmt: skip

        left, right = st.columns(2)
        with left:
            st.subheader("Average signal by operator")
            frame = shaping.signal_series(signal.body)
            st.plotly_chart(charts.signal_by_operator(frame), key="chart-signal")
            if note := shaping.withheld_caption(
                frame, what="operator × bucket points", meta=signal.body.get("meta")
            ):
                st.caption(note)
            panels.footer(frame, signal, base_url=client.base_url,
                          filename="signal_by_operator.csv", key="signal")  # fmt: skip
            panels.log_render(settings, signal)
        with right:
            st.subheader("GPS precision by provider")
            frame = shaping.gps_series(gps.body)
            st.plotly_chart(charts.gps_by_provider(frame), key="chart-gps")
            if note := shaping.withheld_caption(
                frame, what="provider × bucket points", meta=gps.body.get("meta")
            ):
                st.caption(note)
            panels.footer(frame, gps, base_url=client.base_url,
                          filename="gps_precision.csv", key="gps")  # fmt: skip

        left, right = st.columns(2)
        with left:
            st.subheader(f"Status of the {settings.top_postal_codes} worst postal codes")
            frame = shaping.status_totals(status.body)
            st.plotly_chart(charts.status_stacks(frame), key="chart-status")
            panels.footer(frame, status, base_url=client.base_url,
                          filename="status_worst_postal_codes.csv", key="status")  # fmt: skip
        with right:
            st.subheader("Signal-quality bands by operator × network")
            frame = shaping.quality_shares(quality.body)
            st.plotly_chart(charts.quality_bars(frame), key="chart-quality")
            st.caption(
                f"Bands per network type, from {shaping.definition_note(definition)}: "
                + "; ".join(
                    f"{network} {b.measure} excellent ≥ {b.excellent_min}, good ≥ {b.good_min}, "
                    f"fair ≥ {b.fair_min} dBm"
                    for network, b in sorted(definition.bands.items())
                )
                + "; else poor."
            )
            panels.footer(frame, quality, base_url=client.base_url,
                          filename="signal_quality.csv", key="quality")  # fmt: skip

    live()


render(context.current())
