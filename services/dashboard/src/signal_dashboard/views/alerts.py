"""Alerts: the alert evaluator's view (#25) — firing and pending alerts now with a link to each
area's map, a timeline per area of the recorded transitions, and the rule definitions — plus the
last hour of the alerting area selected."""

from __future__ import annotations

import datetime as dt

import streamlit as st

from signal_dashboard import charts
from signal_dashboard.core import shaping
from signal_dashboard.ui import context, panels

_RECENT = dt.timedelta(hours=1)
# The API's longest /v1/alerts/history range.
_MAX_HISTORY = dt.timedelta(hours=24)
_NOT_EVALUATED = "alerts_not_evaluated"


def _status(status: shaping.EvaluatorStatus) -> None:
    draw = {"error": st.error, "warn": st.warning}.get(status.level, st.caption)
    draw(status.message)


def render(ctx: context.Context) -> None:
    """Draw the evaluator's alerts, their timeline, the rules and one area's last hour."""
    st.title("Alerts")

    @st.fragment(run_every=ctx.run_every)
    def live() -> None:
        client = ctx.client
        codes = ctx.filters.postal_codes
        run = panels.PanelRun()
        banner = st.container()  # filled last, drawn first: later fetches may fail too
        now = dt.datetime.now(dt.UTC)
        active = run.fetch("alerts_active", lambda: client.alerts_active(postal_codes=codes))
        never = active.error is not None and active.error.code == _NOT_EVALUATED
        if never and active.response is None:
            run.fetched.remove(active)  # an answer, not a failure: said below, not in the banner
        status = shaping.evaluator_status(
            active.body if active.response is not None else None,
            never_evaluated=never and active.response is None,
        )
        st.subheader("Firing and pending now")
        _status(status)
        frame = shaping.active_alerts_table(active.body, now)
        selected: str | None = None
        if active.response is not None:
            if frame.empty and status.level == "ok":
                st.success("The evaluator's newest cycle found no area firing or pending.")
            elif frame.empty:
                st.warning("No alert in the newest cycle, but that cycle is not current.")
            else:
                st.dataframe(
                    frame.drop(columns=["alert_id"]),
                    hide_index=True,
                    column_config={
                        "since": st.column_config.DatetimeColumn("since (UTC)", format="HH:mm"),
                        "area": "area (postal code)",
                        "sample_size": st.column_config.NumberColumn("sample size", format="%d"),
                        "window_end": st.column_config.DatetimeColumn(
                            "newest window to (UTC)", format="HH:mm"
                        ),
                        "map": st.column_config.LinkColumn(
                            "map", display_text="Coverage map", help="The area on the Coverage page"
                        ),
                    },
                )
                areas = list(dict.fromkeys(str(area) for area in frame["area"]))
                selected = st.selectbox(
                    "Show the last hour of",
                    areas,
                    key="alert_postal_code",
                    help="One of the alerting areas (firing first).",
                )
        panels.footer(
            frame, active, base_url=client.base_url, filename="alerts_active.csv", key="active"
        )

        st.subheader("Timeline per area")
        start, end = ctx.window()
        start = max(start, end - _MAX_HISTORY)
        history = run.fetch(
            "alerts_history", lambda: client.alerts_history(start, end, postal_codes=codes)
        )
        timeline = shaping.alert_timeline(history.body, min(end, now))
        if history.response is not None:
            st.caption(
                f"Transitions the evaluator recorded from {start:%Y-%m-%d %H:%M} to "
                f"{end:%H:%M} UTC (the sidebar's range, at most 24 h): pending and firing "
                "spans; a gap is inactive or resolved."
            )
            st.plotly_chart(
                charts.alert_timeline(timeline, start=start, end=min(end, now)),
                key="chart-alert-timeline",
            )
            transitions = shaping.transitions_table(history.body)
            with st.expander(f"{len(transitions)} transition(s)"):
                st.dataframe(
                    transitions,
                    hide_index=True,
                    column_config={
                        "at": st.column_config.DatetimeColumn("at (UTC)", format="HH:mm:ss"),
                        "since": st.column_config.DatetimeColumn("since (UTC)", format="HH:mm"),
                    },
                )
        panels.footer(
            shaping.transitions_table(history.body), history, base_url=client.base_url,
            filename="alert_transitions.csv", key="history",
        )  # fmt: skip

        st.subheader("Rules")
        rules = run.fetch("alert_rules", client.alert_rules)
        rules_frame = shaping.alert_rules_table(rules.body)
        if rules.response is not None:
            st.markdown(shaping.alert_rules_note(rules.body))
            st.dataframe(
                rules_frame,
                hide_index=True,
                column_config={"fire_after_windows": "fires after (windows)"},
            )
        panels.footer(
            rules_frame, rules, base_url=client.base_url, filename="alert_rules.csv", key="rules"
        )

        if selected is not None:
            end_minute = now.replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
            series = run.fetch(
                "alert_series",
                lambda: client.status_counts(
                    end_minute - _RECENT, end_minute, "1m", postal_codes=(selected,)
                ),
            )
            st.subheader(f"{selected}: events per status, last hour")
            series_frame = shaping.status_series(series.body, selected)
            st.plotly_chart(charts.postal_series(series_frame, selected), key="chart-alert")
            panels.footer(
                series_frame, series, base_url=client.base_url,
                filename=f"status_{selected}.csv", key="alert-series",
            )  # fmt: skip
        with banner:
            run.banner(now=now)

    live()


render(context.current())
