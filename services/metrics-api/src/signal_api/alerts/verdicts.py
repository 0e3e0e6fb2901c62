"""From the evaluator's query rows to each alert's verdict per window (pure)."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from signal_api.alerts.model import alert_id
from signal_api.alerts.queries import MIDDLE_BUCKET
from signal_api.alerts.rules import AlertRules, Verdict

Series = list[tuple[dt.datetime, Verdict, dict[str, float]]]
AreaKey = tuple[str, str, str]  # (rule, area_kind, area)


def _epoch(moment: dt.datetime) -> int:
    return int(moment.timestamp())


def _buckets(
    rows: Iterable[Mapping[str, Any]], columns: tuple[str, str, str]
) -> dict[str, dict[int, tuple[int, int, int]]]:
    """Query rows as postal code -> bucket -> the three counts named by `columns`."""
    by_code: dict[str, dict[int, tuple[int, int, int]]] = defaultdict(dict)
    for row in rows:
        a, b, c = (int(row[name] or 0) for name in columns)
        by_code[row["postal_code"]][int(row["bucket"])] = (a, b, c)
    return by_code


def coverage_verdicts(
    rows: Iterable[Mapping[str, Any]], ends: list[dt.datetime], rules: AlertRules
) -> dict[AreaKey, Series]:
    """out_of_service and signal_drop verdicts per postal code and window end."""
    by_code = _buckets(rows, ("events", "out_of_service", "signal_sum"))
    oos, drop = rules.out_of_service, rules.signal_drop
    result: dict[AreaKey, Series] = {}
    for code, buckets in by_code.items():
        middle = buckets.get(MIDDLE_BUCKET, (0, 0, 0))

        present = sorted((k, v) for k, v in buckets.items() if k != MIDDLE_BUCKET)

        def total(
            lo: int, hi: int, b: list[tuple[int, tuple[int, int, int]]] = present
        ) -> list[int]:
            # over the buckets present (~40 a code), not every start of a 24 h baseline
            sums = [0, 0, 0]
            for start, values in b:
                if lo <= start < hi:
                    for i, v in enumerate(values):
                        sums[i] += v
            return sums

        oos_series: Series = []
        drop_series: Series = []
        for end in ends:
            e = _epoch(end)
            n, out, _ = total(e - oos.recent_minutes * 60, e)
            share = out / n if n else 0.0
            oos_series.append(
                (
                    end,
                    oos.verdict(events=n, out_of_service=out),
                    {"events": n, "out_of_service_share": share},
                )
            )
            recent_lo = e - drop.recent_minutes * 60
            rn, _, rsum = total(recent_lo, e)
            bn, _, bsum = total(recent_lo - drop.baseline_minutes * 60, recent_lo)
            bn, bsum = bn + middle[0], bsum + middle[2]
            recent = rsum / rn if rn else None
            base = bsum / bn if bn else None
            measures: dict[str, float] = {"events": rn, "baseline_events": bn}
            if recent is not None:
                measures["recent_avg_signal_dbm"] = recent
            if base is not None:
                measures["baseline_avg_signal_dbm"] = base
            if recent is not None and base is not None:
                measures["signal_drop_db"] = base - recent
            drop_series.append(
                (
                    end,
                    drop.verdict(
                        events=rn, recent_avg=recent, baseline_avg=base, baseline_events=bn
                    ),
                    measures,
                )
            )
        result[(oos.kind, "postal_code", code)] = oos_series
        result[(drop.kind, "postal_code", code)] = drop_series
    return result


def hole_verdicts(
    rows: Iterable[Mapping[str, Any]], ends: list[dt.datetime], rules: AlertRules
) -> dict[AreaKey, Series]:
    """coverage_hole verdicts per postal code and window end."""
    by_code = _buckets(rows, ("events", "weak", "devices"))
    hole = rules.coverage_hole
    step = int(rules.window.total_seconds())
    result: dict[AreaKey, Series] = {}
    for code, buckets in by_code.items():
        series: Series = []
        for end in ends:
            n, weak, devices = buckets.get(_epoch(end) - step, (0, 0, 0))
            measures = {
                "events": n,
                "weak": weak,
                "weak_share": weak / n if n else 0.0,
                "devices": devices,
            }
            series.append((end, hole.verdict(events=n, weak=weak, devices=devices), measures))
        result[(hole.kind, "postal_code", code)] = series
    return result


def key_id(key: AreaKey) -> str:
    return alert_id(*key)
