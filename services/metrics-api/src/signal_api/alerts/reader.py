"""What the API reads of alert_events: the newest cycle's active alerts, and transitions."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from signal_api.alerts.store import AlertStore, cycles_between, latest_cycle
from signal_api.core.errors import ApiError


class AlertsNotEvaluatedError(ApiError):
    """No evaluator cycle is in the lake (503): "no alerts" would be a guess, not an answer."""

    status_code = 503
    code = "alerts_not_evaluated"


def _utc(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
    return value


def _row(r: dict[str, Any]) -> dict[str, Any]:
    return {k: _utc(v) for k, v in r.items()} | {"measures": json.loads(r["measures"] or "{}")}


def active_alerts(
    store: AlertStore,
    *,
    now: dt.datetime,
    stale_after_s: float,
    postal_codes: tuple[str, ...] = (),
) -> dict[str, Any]:
    """The newest committed cycle's pending and firing alerts at its newest window."""
    newest = latest_cycle(store, before=now + dt.timedelta(seconds=1))
    table = store.read(newest) if newest is not None else None
    if newest is None or table is None:
        raise AlertsNotEvaluatedError(
            "the alert evaluator has committed no cycle yet, so the alert state is unknown "
            "(run `signal-api alerts evaluate --every 60`)"
        )
    rows = [_row(r) for r in table.to_pylist()]
    head = next(r for r in rows if r["kind"] == "cycle")
    alerts = []
    for r in rows:
        if r["kind"] != "state" or r["window_end"] != head["window_end"]:
            continue
        if postal_codes and r["area"] not in postal_codes:
            continue
        alerts.append(
            {
                "alert_id": r["alert_id"],
                "rule": r["rule"],
                "area_kind": r["area_kind"],
                "area": r["area"],
                "state": r["state"],
                "since": r["since"],
                "window_end": r["window_end"],
                "measures": r["measures"],
                "sample_size": int(r["measures"].get("events", 0)),
            }
        )
    alerts.sort(key=lambda a: (a["state"] != "firing", a["since"], a["alert_id"]))
    age = (now - newest).total_seconds()
    return {
        "evaluated_at": newest,
        "window_end": head["window_end"],
        "age_s": age,
        "stale": age > stale_after_s,
        "areas_evaluated": int(head["measures"].get("areas", 0)),
        "alerts": alerts,
    }


def transitions(
    store: AlertStore,
    start: dt.datetime,
    end: dt.datetime,
    *,
    postal_codes: tuple[str, ...] = (),
) -> list[dict[str, Any]]:
    """Transitions recorded by the cycles evaluated in [start, end), oldest first."""
    found: list[dict[str, Any]] = []
    for moment in cycles_between(store, start, end):
        if moment >= end:
            continue
        table = store.read(moment)
        for r in table.to_pylist() if table is not None else []:
            if r["kind"] != "transition" or (postal_codes and r["area"] not in postal_codes):
                continue
            row = _row(r)
            found.append(
                {
                    "key": row["transition_key"],
                    "alert_id": row["alert_id"],
                    "rule": row["rule"],
                    "area_kind": row["area_kind"],
                    "area": row["area"],
                    "previous": row["previous"],
                    "state": row["state"],
                    "at": row["evaluated_at"],
                    "window_end": row["window_end"],
                    "since": row["since"],
                    "measures": row["measures"],
                    "summary": row["summary"],
                    "correction": bool(row["correction"]),
                }
            )
    return found
