"""Alert rules: out-of-service share or signal drop vs the trailing baseline."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class AlertThresholds:
    """When a postal code is in trouble."""

    recent_minutes: int
    baseline_minutes: int
    out_of_service_share: float
    signal_drop_db: float
    min_events: int

    def as_dict(self) -> dict[str, float]:
        return {
            "recent_minutes": self.recent_minutes,
            "baseline_minutes": self.baseline_minutes,
            "out_of_service_share": self.out_of_service_share,
            "signal_drop_db": self.signal_drop_db,
            "min_events": self.min_events,
        }

    def measures(self, c: dict[str, Any]) -> tuple[float, float | None, float | None, float | None]:
        """(oos share, recent avg, baseline avg, drop) of a candidate row."""
        n = int(c["recent_count"] or 0)
        share = int(c["recent_out_of_service"] or 0) / n if n else 0.0
        recent = int(c["recent_signal_sum"] or 0) / n if n else None
        nb = int(c["baseline_count"] or 0)
        base = int(c["baseline_signal_sum"] or 0) / nb if nb else None
        drop = base - recent if base is not None and recent is not None else None
        return share, recent, base, drop

    def reasons(self, c: dict[str, Any]) -> list[str]:
        """Which rules a candidate breaks (empty: none)."""
        if int(c["recent_count"] or 0) < self.min_events:
            return []
        share, _, _, drop = self.measures(c)
        found = []
        if share >= self.out_of_service_share:
            found.append("out_of_service")
        if drop is not None and drop >= self.signal_drop_db:
            found.append("signal_drop")
        return found

    def triggered(self, c: dict[str, Any]) -> bool:
        return bool(self.reasons(c))


def _since(
    minutes: Sequence[dict[str, Any]],
    reasons: list[str],
    baseline_avg: float | None,
    thresholds: AlertThresholds,
) -> int:
    """Epoch start of the trailing run of minutes (with data) in which a rule holds."""
    since = int(minutes[-1]["bucket"])
    for m in reversed(minutes):
        n = int(m["event_count"])
        share = int(m["out_of_service_count"]) / n
        avg = int(m["signal_sum"]) / n
        bad = ("out_of_service" in reasons and share >= thresholds.out_of_service_share) or (
            "signal_drop" in reasons
            and baseline_avg is not None
            and baseline_avg - avg >= thresholds.signal_drop_db
        )
        if not bad:
            break
        since = int(m["bucket"])
    return since


def find_alerts(
    flagged: Sequence[dict[str, Any]],
    minutes: Sequence[dict[str, Any]],
    thresholds: AlertThresholds,
) -> list[dict[str, Any]]:
    """Alerts for flagged candidates, most severe first, with severity and since-when."""
    by_code: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for m in minutes:
        if int(m["event_count"]):
            by_code[m["postal_code"]].append(m)
    result = []
    for c in flagged:
        reasons = thresholds.reasons(c)
        share, recent, base, drop = thresholds.measures(c)
        critical = share >= 2 * thresholds.out_of_service_share or (
            drop is not None and drop >= 2 * thresholds.signal_drop_db
        )
        series = sorted(by_code[c["postal_code"]], key=lambda m: int(m["bucket"]))
        since = _since(series, reasons, base, thresholds) if series else None
        result.append(
            {
                "postal_code": c["postal_code"],
                "severity": "critical" if critical else "warning",
                "reasons": reasons,
                "since": dt.datetime.fromtimestamp(since, dt.UTC) if since is not None else None,
                "recent_event_count": int(c["recent_count"]),
                "out_of_service_share": share,
                "recent_avg_signal_dbm": recent,
                "baseline_avg_signal_dbm": base,
                "signal_drop_db": drop,
            }
        )
    result.sort(
        key=lambda a: (a["severity"] != "critical", -a["out_of_service_share"], a["postal_code"])
    )
    return result
