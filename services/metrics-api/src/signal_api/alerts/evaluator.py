"""One evaluation cycle: read the lake, replay each alert's lifecycle, commit, then notify.

A cycle at evaluation time `at` judges the windows that closed within the horizon, starting from
the state its last committed cycle recorded for the oldest of them (the anchor), so late data
inside the horizon changes the replay. A transition the replay yields that no committed cycle
recorded is written; if its window was already judged by an earlier cycle it is a correction.
When the replay ends in a state the record does not (late data withdrew a breach), a
correction transition to the replayed state is written. Nothing committed is ever rewritten.
The cycle's file (signal_api.alerts.store) is written first, then its notifiable transitions
and those of the cycles within the horizon are handed to the notifier, which deduplicates by
Transition.key: a cycle killed after its commit and before delivery is delivered by the next.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import pyarrow as pa

from signal_api.adapters.engine import QueryEngine
from signal_api.alerts import queries
from signal_api.alerts.lifecycle import AlertState, Step, replay
from signal_api.alerts.model import NOTIFIED_STATES, Transition, TransitionNotifier, alert_id
from signal_api.alerts.rules import AlertRules
from signal_api.alerts.store import AlertStore, cycles_between, latest_cycle
from signal_api.alerts.verdicts import AreaKey, Series, coverage_verdicts, hole_verdicts
from signal_api.observability import EvaluatorMetrics
from signal_common.lake import ALERT_EVENTS, table_arrow_schema

log = logging.getLogger(__name__)
SCHEMA = table_arrow_schema(ALERT_EVENTS)


class EvaluatorError(Exception):
    """The evaluator cannot run this cycle (e.g. its time is older than a committed cycle)."""


@dataclass(frozen=True)
class Cycle:
    """What one committed cycle recorded."""

    evaluated_at: dt.datetime
    window_end: dt.datetime
    first_window_end: dt.datetime  # the anchor: states are recorded from here to window_end
    states: dict[tuple[str, dt.datetime], AlertState]  # (alert_id, window_end) -> active state
    transitions: list[Transition]


@dataclass
class CycleResult:
    """What `evaluate` did."""

    evaluated_at: dt.datetime
    window_end: dt.datetime
    transitions: list[Transition] = field(default_factory=list)
    already_committed: bool = False
    areas: int = 0
    windows: int = 0
    delivered: int = 0
    seconds: float = 0.0


def _utc(value: Any) -> dt.datetime | None:
    if value is None:
        return None
    assert isinstance(value, dt.datetime)
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def parse_cycle(table: pa.Table) -> Cycle:
    """A committed cycle file's rows as states and transitions."""
    rows = table.to_pylist()
    head = next(r for r in rows if r["kind"] == "cycle")
    evaluated_at = _utc(head["evaluated_at"])
    measures = json.loads(head["measures"] or "{}")
    assert evaluated_at is not None
    states: dict[tuple[str, dt.datetime], AlertState] = {}
    transitions: list[Transition] = []
    for r in rows:
        end = _utc(r["window_end"])
        assert end is not None
        if r["kind"] == "state":
            states[(r["alert_id"], end)] = AlertState(
                r["alert_id"],
                r["rule"],
                r["area_kind"],
                r["area"],
                r["state"],
                end,
                _utc(r["since"]),
                int(r["breaches"]),
                int(r["clears"]),
                json.loads(r["measures"] or "{}"),
            )
        elif r["kind"] == "transition":
            since = _utc(r["since"])
            assert since is not None
            transitions.append(
                Transition(
                    alert_id=r["alert_id"],
                    rule=r["rule"],
                    area_kind=r["area_kind"],
                    area=r["area"],
                    state=r["state"],
                    previous=r["previous"],
                    at=evaluated_at,
                    since=since,
                    measures=json.loads(r["measures"] or "{}"),
                    summary=r["summary"],
                    correction=bool(r["correction"]),
                )
            )
    first = dt.datetime.fromisoformat(measures["first_window_end"])
    return Cycle(
        evaluated_at,
        _utc(head["window_end"]) or first,
        first,
        states,
        transitions,
    )


def _pct(value: float) -> str:
    return f"{100 * value:.0f} %"


def summary_of(rule: str, area: str, state: str, measures: Mapping[str, float]) -> str:
    """One human sentence for a transition."""
    n = int(measures.get("events", 0))
    if rule == "coverage_hole":
        what = (
            f"{_pct(measures.get('weak_share', 0.0))} of {n} samples at or below the hole "
            f"threshold, from {int(measures.get('devices', 0))} devices"
        )
    elif rule == "out_of_service":
        what = f"{_pct(measures.get('out_of_service_share', 0.0))} of {n} events out of service"
    else:
        drop = measures.get("signal_drop_db")
        what = (
            f"average signal {drop:.1f} dB below its baseline over {n} events"
            if drop is not None
            else f"{n} events"
        )
    verb = {
        "pending": "may be starting",
        "firing": "is firing",
        "resolved": "has resolved",
        "inactive": "did not persist",
    }[state]
    return f"{rule.replace('_', ' ').capitalize()} in postal code {area} {verb}: {what}."


class Evaluator:
    """Evaluates the rules over the lake and keeps alert state and history in alert_events."""

    def __init__(
        self,
        engine: QueryEngine,
        store: AlertStore,
        rules: AlertRules,
        notifier: TransitionNotifier | None,
        *,
        lookback: dt.timedelta = dt.timedelta(days=7),
        metrics: EvaluatorMetrics | None = None,
    ) -> None:
        self.engine = engine
        self.store = store
        self.rules = rules
        self.notifier = notifier
        self.lookback = lookback
        self.metrics = metrics
        self._cycles: dict[dt.datetime, Cycle] = {}

    def _cycle(self, at: dt.datetime) -> Cycle | None:
        """A committed cycle (files never change once committed, so parsed ones are kept)."""
        if at in self._cycles:
            return self._cycles[at]
        table = self.store.read(at)
        if table is None:
            return None
        cycle = self._cycles[at] = parse_cycle(table)
        oldest = at - 2 * self.rules.horizon
        for moment in [m for m in self._cycles if m < oldest]:
            del self._cycles[moment]
        return cycle

    def evaluate(self, at: dt.datetime) -> CycleResult:
        """Run (or, if it is committed already, only deliver) the cycle of evaluation time `at`."""
        started = time.monotonic()
        try:
            result = self._cycle_at(at, started)
        except Exception:
            if self.metrics is not None:
                self.metrics.failed(time.monotonic() - started)
            raise
        if self.metrics is not None:
            self.metrics.cycle(
                committed=not result.already_committed,
                seconds=result.seconds,
                evaluated_at=result.evaluated_at.timestamp(),
                areas=result.areas,
                transitions=[(t.rule, t.state, t.correction) for t in result.transitions],
            )
        return result

    def _cycle_at(self, at: dt.datetime, started: float) -> CycleResult:
        at = at.astimezone(dt.UTC).replace(microsecond=0)
        rules = self.rules
        end = rules.last_closed_window_end(at)
        done = self._cycle(at)
        if done is not None:
            result = CycleResult(at, done.window_end, already_committed=True)
        else:
            newer = latest_cycle(self.store, before=at + self.lookback, lookback=self.lookback)
            if newer is not None and newer > at:
                raise EvaluatorError(
                    f"evaluation time {at.isoformat()} is older than the committed cycle "
                    f"{newer.isoformat()}; the history is append-only"
                )
            prev_at = latest_cycle(self.store, before=at, lookback=self.lookback)
            prev = self._cycle(prev_at) if prev_at is not None else None
            result = self._evaluate(at, end, prev)
        result.delivered = self._deliver(at)
        result.seconds = time.monotonic() - started
        return result

    def _anchor(
        self, end: dt.datetime, prev: Cycle | None
    ) -> tuple[dt.datetime, dict[str, AlertState]]:
        """The window end replay starts after, and each active alert's state there."""
        oldest = end - self.rules.horizon
        if prev is None:
            return oldest, {}
        if oldest > prev.window_end:
            # down longer than the horizon: windows in between are never judged (README)
            log.warning(
                "alert evaluator resumes after a gap longer than its horizon",
                extra={"last_window_end": prev.window_end.isoformat()},
            )
            carried = {
                a: replace(s, window_end=oldest)
                for (a, w), s in prev.states.items()
                if w == prev.window_end
            }
            return oldest, carried
        anchor = max(oldest, prev.first_window_end)
        return anchor, {a: s for (a, w), s in prev.states.items() if w == anchor}

    def _verdicts(self, ends: list[dt.datetime]) -> dict[AreaKey, Series]:
        rules = self.rules
        coverage, middle, events = queries.scan_ranges(
            ends[0],
            ends[-1],
            window=rules.window,
            recent=dt.timedelta(
                minutes=max(rules.out_of_service.recent_minutes, rules.signal_drop.recent_minutes)
            ),
            baseline=dt.timedelta(minutes=rules.signal_drop.baseline_minutes),
        )
        window_s = int(rules.window.total_seconds())
        found = coverage_verdicts(
            self.engine.run(queries.coverage_windows(coverage, middle, window_s=window_s)),
            ends,
            rules,
        )
        found.update(
            hole_verdicts(
                self.engine.run(queries.hole_windows(events, rules.bands, window_s=window_s)),
                ends,
                rules,
            )
        )
        return found

    def _evaluate(self, at: dt.datetime, end: dt.datetime, prev: Cycle | None) -> CycleResult:
        rules = self.rules
        anchor_end, anchor = self._anchor(end, prev)
        ends: list[dt.datetime] = []
        e = anchor_end + rules.window
        while e <= end:
            ends.append(e)
            e += rules.window
        verdicts = self._verdicts(ends) if ends else {}
        keys = set(verdicts) | {(s.rule, s.area_kind, s.area) for s in anchor.values()}
        # what committed cycles recorded for windows after the anchor (only their files are read)
        recorded: dict[str, Transition] = {}
        if prev is not None:
            for t in self._recorded(anchor_end, at):
                recorded.setdefault(t.key, t)
        judged_until = prev.window_end if prev is not None else anchor_end
        last_known = (
            {a: s for (a, w), s in prev.states.items() if w == prev.window_end} if prev else {}
        )
        state_rows: list[AlertState] = list(anchor.values())
        new: list[tuple[Step, bool, AlertState]] = []
        for key in sorted(keys):
            aid = alert_id(*key)
            start = anchor.get(aid) or AlertState(
                aid, *key, state="inactive", window_end=anchor_end
            )
            series = verdicts.get(key) or [(w, "unknown", {}) for w in ends]
            states, steps = replay(
                start,
                series,
                window=rules.window,
                fire_after=rules.fire_after(key[0]),
                resolve_after=rules.resolve_after_windows,
            )
            state_rows += [s for s in states if s.active]
            final = states[-1] if states else start
            believed = last_known.get(aid)
            believed_state = believed.state if believed else "inactive"
            believed_since = believed.since if believed else None
            for s in steps:
                if s.key in recorded:
                    continue
                new.append((s, s.window_end <= judged_until and prev is not None, final))
                believed_state, believed_since = s.state, s.since
            on = believed_state in ("pending", "firing")
            if (on or final.active) and (believed_state != final.state):
                # late data withdrew (or changed) what the record says: correct it at `end`
                if final.active:
                    state, since = final.state, final.since
                else:
                    state = "resolved" if believed_state == "firing" else "inactive"
                    since = believed_since
                if since is not None and f"{aid}|{state}|{since.isoformat()}" not in recorded:
                    fix = Step(aid, end, believed_state, state, since, final.measures)
                    new.append((fix, True, final))
        transitions = [self._transition(at, s, fix, correction) for s, correction, fix in new]
        self.store.write(
            at, self._rows(at, end, anchor_end, state_rows, new, areas=len(keys), windows=len(ends))
        )
        log.info(
            "alert cycle committed",
            extra={
                "evaluated_at": at.isoformat(),
                "window_end": end.isoformat(),
                "transitions": len(transitions),
                "corrections": sum(1 for t in transitions if t.correction),
            },
        )
        return CycleResult(at, end, transitions, areas=len(keys), windows=len(ends))

    def _recorded(self, since: dt.datetime, before: dt.datetime) -> list[Transition]:
        """Transitions of the committed cycles evaluated in [since, before)."""
        found: list[Transition] = []
        for moment in cycles_between(self.store, since, before):
            if moment < before:
                cycle = self._cycle(moment)
                if cycle is not None:
                    found += cycle.transitions
        return found

    @staticmethod
    def _transition(at: dt.datetime, s: Step, final: AlertState, correction: bool) -> Transition:
        return Transition(
            alert_id=s.alert_id,
            rule=final.rule,
            area_kind=final.area_kind,
            area=final.area,
            state=s.state,
            previous=s.previous,
            at=at,
            since=s.since,
            measures=dict(s.measures),
            summary=summary_of(final.rule, final.area, s.state, s.measures),
            correction=correction,
        )

    def _rows(
        self,
        at: dt.datetime,
        end: dt.datetime,
        anchor_end: dt.datetime,
        states: Sequence[AlertState],
        new: Sequence[tuple[Step, bool, AlertState]],
        *,
        areas: int,
        windows: int,
    ) -> pa.Table:
        blank: dict[str, Any] = {c.name: None for c in ALERT_EVENTS.columns}
        head = {
            **blank,
            "evaluated_at": at,
            "kind": "cycle",
            "window_end": end,
            "measures": json.dumps(
                {"first_window_end": anchor_end.isoformat(), "areas": areas, "windows": windows}
            ),
        }
        rows: list[dict[str, Any]] = [head]
        for s in states:
            rows.append(
                {
                    **blank,
                    "evaluated_at": at,
                    "kind": "state",
                    "alert_id": s.alert_id,
                    "rule": s.rule,
                    "area_kind": s.area_kind,
                    "area": s.area,
                    "state": s.state,
                    "window_end": s.window_end,
                    "since": s.since,
                    "breaches": s.breaches,
                    "clears": s.clears,
                    "measures": json.dumps(dict(s.measures), sort_keys=True),
                }
            )
        for step, correction, final in new:
            t = self._transition(at, step, final, correction)
            rows.append(
                {
                    **blank,
                    "evaluated_at": at,
                    "kind": "transition",
                    "alert_id": t.alert_id,
                    "rule": t.rule,
                    "area_kind": t.area_kind,
                    "area": t.area,
                    "state": t.state,
                    "previous": t.previous,
                    "window_end": step.window_end,
                    "since": t.since,
                    "measures": json.dumps(dict(t.measures), sort_keys=True),
                    "summary": t.summary,
                    "correction": t.correction,
                    "transition_key": t.key,
                }
            )
        return pa.Table.from_pylist(rows, schema=SCHEMA)

    def _deliver(self, at: dt.datetime) -> int:
        """Hand the notifiable transitions of the cycles within the horizon (this one included)
        to the notifier; it sends each Transition.key once."""
        if self.notifier is None:
            return 0
        due = [
            t
            for t in self._recorded(at - self.rules.horizon, at + dt.timedelta(seconds=1))
            if t.state in NOTIFIED_STATES
        ]
        # called every cycle, even with nothing due: delivery renews its Alertmanager leases
        # of alerts still firing from inside deliver
        self.notifier.deliver(due)
        return len(due)


def run_forever(evaluator: Evaluator, *, every_s: float, once: bool = False) -> None:
    """Evaluate now and then every `every_s` seconds (aligned to the clock), or once."""
    while True:
        now = dt.datetime.now(dt.UTC)
        try:
            result = evaluator.evaluate(now)
            log.info(
                "alert cycle",
                extra={
                    "evaluated_at": result.evaluated_at.isoformat(),
                    "transitions": len(result.transitions),
                    "areas": result.areas,
                    "seconds": round(result.seconds, 3),
                },
            )
        except Exception:
            if once:
                raise
            log.exception("alert cycle failed; the next cycle re-evaluates its windows")
        if once:
            return
        time.sleep(every_s - (time.time() % every_s))
