"""Check verdicts: what each probe's answer means, and how results are printed."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

Status = Literal["ok", "FAIL", "skip"]
# a Glue job run in one of these states may still reach RUNNING (Glue API, JobRun.JobRunState)
GLUE_TRANSITIONAL = frozenset({"STARTING", "WAITING"})
NAME_WIDTH = 36


@dataclass(frozen=True)
class CheckResult:
    """One check's outcome, its duration and one plain sentence of detail."""

    name: str
    status: Status
    seconds: float | None = None
    detail: str = ""


@dataclass(frozen=True)
class Progress:
    """A probe's answer: done (passed), failed for good, or neither yet (keep waiting)."""

    done: bool
    detail: str
    failed: bool = False


def format_line(result: CheckResult) -> str:
    """`ok    events visible in /v1/summary     41.2 s   detail`."""
    took = f"{result.seconds:7.1f} s" if result.seconds is not None else " " * 9
    line = f"{result.status:<5} {result.name:<{NAME_WIDTH}} {took}"
    return f"{line}   {result.detail}" if result.detail else line


def format_summary(results: Sequence[CheckResult], total_seconds: float) -> str:
    """The last line: counts by outcome, the skip flags, the total time, the verdict."""
    passed = sum(r.status == "ok" for r in results)
    failed = [r.name for r in results if r.status == "FAIL"]
    skipped = sum(r.status == "skip" for r in results)
    verdict = "passed" if not failed and passed else "FAILED"
    text = (
        f"smoke {verdict}: {passed} ok, {len(failed)} failed, {skipped} skipped "
        f"in {total_seconds:.1f} s"
    )
    return f"{text} (failed: {', '.join(failed)})" if failed else text


def exit_code(results: Sequence[CheckResult]) -> int:
    """0 only when every check that ran passed and at least one ran."""
    ran = [r for r in results if r.status != "skip"]
    return 0 if ran and all(r.status == "ok" for r in ran) else 1


def parse_time(value: Any) -> dt.datetime | None:
    """An ISO-8601 instant from a JSON answer (None stays None)."""
    if value is None:
        return None
    moment = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


@dataclass(frozen=True)
class WindowTotals:
    """What /v1/summary reports for one minute: its events and their summed signal (dBm)."""

    count: int
    signal_sum: int


def window_totals(body: Mapping[str, Any], window_start: dt.datetime) -> WindowTotals | None:
    """The totals /v1/summary reports for `window_start`, or None when it reports another
    minute (or none: nothing in the lake yet). The sum is whole: every level is whole dBm."""
    if parse_time(body.get("window_start")) != window_start:
        return None
    count = int(body.get("events_per_min") or 0)
    average = body.get("avg_signal_dbm")
    return WindowTotals(count, round(float(average) * count) if average is not None else 0)


def summary_progress(
    body: Mapping[str, Any],
    *,
    window_start: dt.datetime,
    before: WindowTotals,
    expected: WindowTotals,
) -> Progress:
    """Whether /v1/summary at the marker window grew by exactly the marked events' totals."""
    label = window_start.strftime("%Y-%m-%d %H:%M UTC")
    now = window_totals(body, window_start)
    if now is None:
        shown = body.get("window_start") or "no window"
        return Progress(False, f"window {label}: not reported yet (latest complete: {shown})")
    count, signal = now.count - before.count, now.signal_sum - before.signal_sum
    if count == expected.count and signal == expected.signal_sum:
        extra = f" (above {before.count} already there)" if before.count else ""
        return Progress(True, f"window {label}: {count} of {expected.count} marked events{extra}")
    if count > expected.count or (count == expected.count and signal != expected.signal_sum):
        return Progress(
            False,
            f"window {label}: {count} new events with {signal} dBm in all, not the "
            f"{expected.count} marked ones with {expected.signal_sum} dBm (other events arrived "
            "in the marker minute)",
        )
    return Progress(False, f"window {label}: {max(count, 0)} of {expected.count} marked events")


def pipeline_progress(body: Mapping[str, Any], *, expected: int, min_lateness_s: float) -> Progress:
    """Whether /v1/pipeline, over batches read since the send, counted `expected` valid rows,
    one of them at least as late as the marked events (their event time is the marker minute)."""
    valid = int(body.get("valid_rows") or 0)
    batches = int(body.get("batches") or 0)
    lateness = body.get("max_lateness_s")
    late_enough = lateness is not None and float(lateness) >= min_lateness_s
    shown = "none" if lateness is None else f"{float(lateness):.0f} s"
    detail = (
        f"{batches} batches since the send, {valid} valid rows (need {expected}), "
        f"max lateness {shown} (marked: {min_lateness_s:.0f} s or more)"
    )
    return Progress(valid >= expected and late_enough, detail)


def glue_progress(job_name: str, runs: Sequence[Mapping[str, Any]]) -> Progress:
    """The newest run of the job must be RUNNING; STARTING/WAITING may still get there."""
    if not runs:
        return Progress(False, f"the Glue job {job_name} has no run: nothing started it", True)
    newest = max(
        runs, key=lambda run: run.get("StartedOn") or dt.datetime.min.replace(tzinfo=dt.UTC)
    )
    state = str(newest.get("JobRunState"))
    run_id = str(newest.get("Id", "?"))
    if state == "RUNNING":
        return Progress(True, f"run {run_id[:16]} RUNNING")
    if state in GLUE_TRANSITIONAL:
        return Progress(False, f"run {run_id[:16]} is {state}")
    reason = newest.get("ErrorMessage")
    because = f": {reason}" if reason else ""
    return Progress(False, f"the newest run {run_id[:16]} is {state}, not RUNNING{because}", True)


def alarms_progress(
    alarms: Sequence[Mapping[str, Any]], *, wanted: Sequence[str], prefix: str | None
) -> Progress:
    """Every wanted alarm exists and is OK (INSUFFICIENT_DATA may still become OK; ALARM may
    recover too, so neither fails before the time is up)."""
    states = {str(a["AlarmName"]): str(a["StateValue"]) for a in alarms}
    missing = [name for name in wanted if name not in states]
    if missing:
        return Progress(False, f"no such alarm: {', '.join(missing)}", True)
    if not states:
        return Progress(False, f"no alarm is named {prefix}…", True)
    not_ok = sorted(f"{name} {state}" for name, state in states.items() if state != "OK")
    if not_ok:
        return Progress(False, f"{len(not_ok)} of {len(states)} not OK: {', '.join(not_ok)}")
    return Progress(True, f"{len(states)} alarms OK")


def dashboard_progress(status: int, body: str) -> Progress:
    """Streamlit's /_stcore/health answers 200 `ok` when the server runs."""
    if status == 200 and body.strip() == "ok":
        return Progress(True, "200 ok")
    return Progress(False, f"answered {status} {body.strip()[:60]!r}")
