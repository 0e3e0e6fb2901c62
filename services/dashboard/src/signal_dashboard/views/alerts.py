"""Alerts: postal codes in trouble now, and the recent series of the one selected."""

from __future__ import annotations

import datetime as dt

import streamlit as st

from signal_dashboard import charts
from signal_dashboard.core import shaping
from signal_dashboard.ui import context, panels

_RECENT = dt.timedelta(hours=1)


def render(ctx: context.Context) -> None:
    """Draw the alert list and the last hour of the alerting postal code selected."""
    st.title("Alerts")

    @st.fragment(run_every=ctx.run_every)
    def live() -> None:
        client = ctx.client
        run = panels.PanelRun()
        banner = st.container()  # filled last, drawn first: the series' fetch may fail too
        alerts = run.fetch("alerts", lambda: client.alerts(postal_codes=ctx.filters.postal_codes))
        frame = shaping.alerts_table(alerts.body)
        selected: str | None = None
        now = dt.datetime.now(dt.UTC)
        if frame.empty:
            if alerts.response is not None:
                st.success("No postal code is in trouble right now.")
        else:
            st.markdown(shaping.alerts_headline(frame))
            st.caption("Rule: " + shaping.describe_rule(alerts.body.get("thresholds", {})))
            st.dataframe(
                frame,
                hide_index=True,
                column_config={
                    "postal_code": "postal code",
                    "since": st.column_config.DatetimeColumn("since (UTC)", format="HH:mm"),
                    "rule": "rule that fired",
                    "out_of_service_share": st.column_config.NumberColumn(
                        "out of service", format="percent"
                    ),
                    "signal_drop_db": st.column_config.NumberColumn("drop (dB)", format="%.1f"),
                    "recent_avg_signal_dbm": st.column_config.NumberColumn(
                        "recent avg (dBm)", format="%.1f"
                    ),
                    "baseline_avg_signal_dbm": st.column_config.NumberColumn(
                        "baseline avg (dBm)", format="%.1f"
                    ),
                    "recent_event_count": st.column_config.NumberColumn("events", format="%d"),
                },
            )
            codes = [str(code) for code in frame["postal_code"]]
            selected = st.selectbox(
                "Show the last hour of",
                codes,
                key="alert_postal_code",
                help="One of the alerting postal codes (the worst first).",
            )
        panels.footer(frame, alerts, base_url=client.base_url, filename="alerts.csv", key="alerts")
        if selected is None:
            with banner:
                run.banner(now=now)
            return
        end = now.replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
        series = run.fetch(
            "alert_series",
            lambda: client.status_counts(end - _RECENT, end, "1m", postal_codes=(selected,)),
        )
        with banner:
            run.banner(now=now)
        st.subheader(f"{selected}: events per status, last hour")
        series_frame = shaping.status_series(series.body, selected)
        st.plotly_chart(charts.postal_series(series_frame, selected), key="chart-alert")
        panels.footer(
            series_frame, series, base_url=client.base_url,
            filename=f"status_{selected}.csv", key="alert-series",
        )  # fmt: skip

    live()


render(context.current())
