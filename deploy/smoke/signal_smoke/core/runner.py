"""The smoke run: send the marked events, wait for them, check the job, alarms and dashboard.

Every edge comes in through `Ports` and every clock through `Clock`, so the order and the
waiting are plain code over what the adapters answer.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from signal_smoke.core.checks import (
    CheckResult,
    Progress,
    Status,
    WindowTotals,
    alarms_progress,
    dashboard_progress,
    glue_progress,
    pipeline_progress,
    summary_progress,
    window_totals,
)
from signal_smoke.core.errors import RefusedError, SmokeError
from signal_smoke.core.marker import MarkerRecord, MarkerRun, floor_minute, summary_instant

SKIPPABLE = ("events", "glue", "alarms", "dashboard")


class Ports(Protocol):
    """What the run reads and writes; adapters raise RefusedError or UnavailableError."""

    def put_records(self, records: Sequence[MarkerRecord]) -> None: ...

    def api_get(self, path: str, params: dict[str, str]) -> dict[str, Any]: ...

    def dashboard_health(self) -> tuple[int, str]: ...

    def glue_job_runs(self, job_name: str) -> list[dict[str, Any]]: ...

    def alarms(self, names: Sequence[str], prefix: str | None) -> list[dict[str, Any]]: ...


class Clock(Protocol):
    """Monotonic seconds, the wall clock (UTC) and sleeping."""

    def monotonic(self) -> float: ...

    def now(self) -> dt.datetime: ...

    def sleep(self, seconds: float) -> None: ...


@dataclass(frozen=True)
class Plan:
    """What one run checks and how long it waits."""

    stream: str
    glue_job: str | None
    alarm_names: tuple[str, ...]
    alarm_prefix: str | None
    timeout_s: float
    poll_s: float
    complete_after_s: int
    skip: frozenset[str] = field(default_factory=frozenset)


@dataclass
class Smoke:
    """One smoke run over `ports`; `report` receives each result as it is known and
    `progress` a sentence now and then while a check waits."""

    plan: Plan
    ports: Ports
    clock: Clock
    report: Callable[[CheckResult], None]
    progress: Callable[[str], None]
    progress_every_s: float = 10.0
    results: list[CheckResult] = field(default_factory=list)

    def run(self, marker: MarkerRun) -> list[CheckResult]:
        """Every check in order; a failed one does not stop the others."""
        if "events" in self.plan.skip:
            for name in (
                "events sent",
                "events visible in /v1/summary",
                "events visible in /v1/pipeline",
            ):
                self._skip(name, "events")
        else:
            self._events(marker)
        if "glue" in self.plan.skip:
            self._skip("Glue job RUNNING", "glue")
        else:
            job = self.plan.glue_job or ""
            self._wait(
                "Glue job RUNNING", lambda: glue_progress(job, self.ports.glue_job_runs(job))
            )
        if "alarms" in self.plan.skip:
            self._skip("alarms OK", "alarms")
        else:
            self._wait(
                "alarms OK",
                lambda: alarms_progress(
                    self.ports.alarms(self.plan.alarm_names, self.plan.alarm_prefix),
                    wanted=self.plan.alarm_names,
                    prefix=self.plan.alarm_prefix,
                ),
            )
        if "dashboard" in self.plan.skip:
            self._skip("dashboard answers", "dashboard")
        else:
            self._wait(
                "dashboard answers", lambda: dashboard_progress(*self.ports.dashboard_health())
            )
        return self.results

    def _events(self, marker: MarkerRun) -> None:
        summary_check, pipeline_check = (
            "events visible in /v1/summary",
            "events visible in /v1/pipeline",
        )
        at = summary_instant(marker.window_start, complete_after_s=self.plan.complete_after_s)
        summary_params = {"at": at.isoformat()}
        # the marker minute's totals before the send (another run, or late traffic, may be there)
        refused: SmokeError | None = None
        before = WindowTotals(0, 0)
        try:
            body = self.ports.api_get("/v1/summary", summary_params)
            before = window_totals(body, marker.window_start) or before
        except RefusedError as exc:
            refused = exc
        except SmokeError:
            pass  # unknown: taken as empty (the check can only be stricter)
        sent_at = self.clock.now()
        started = self.clock.monotonic()
        try:
            self.ports.put_records(marker.records)
        except SmokeError as exc:
            self._add("events sent", "FAIL", started, str(exc))
            self._add(summary_check, "FAIL", None, "no marked event was sent")
            self._add(pipeline_check, "FAIL", None, "no marked event was sent")
            return
        self._add(
            "events sent",
            "ok",
            started,
            f"{marker.count} marked events (run {marker.run_id}, {marker.signal_dbm} dBm, "
            f"{marker.window_start:%Y-%m-%d %H:%M} UTC) to {self.plan.stream}",
        )
        if refused is not None:
            self._add(summary_check, "FAIL", None, str(refused))
            self._add(pipeline_check, "FAIL", None, str(refused))
            return
        visible_from = self.clock.monotonic()
        expected = WindowTotals(marker.count, marker.signal_sum)
        seen = self._wait(
            summary_check,
            lambda: summary_progress(
                self.ports.api_get("/v1/summary", summary_params),
                window_start=marker.window_start,
                before=before,
                expected=expected,
            ),
            started=visible_from,
        )
        # /v1/pipeline counts batches, not events: it must account for the marked events
        # (valid rows, one as late as they are) in batches read since the send, a minute of
        # slack for clock skew. Without /v1/summary's proof they arrived, its numbers cannot
        # tell them from other traffic, so it is probed once and fails with what it shows.
        min_lateness = (sent_at - marker.window_end).total_seconds()
        since = floor_minute(sent_at) - dt.timedelta(minutes=1)

        def pipeline() -> Progress:
            until = floor_minute(self.clock.now()) + dt.timedelta(minutes=2)
            body = self.ports.api_get(
                "/v1/pipeline", {"from": since.isoformat(), "to": until.isoformat()}
            )
            answer = pipeline_progress(body, expected=marker.count, min_lateness_s=min_lateness)
            if seen:
                return answer
            return Progress(
                False, f"{answer.detail}; the marked events never showed in /v1/summary", True
            )

        self._wait(pipeline_check, pipeline, started=visible_from)

    def _wait(
        self, name: str, probe: Callable[[], Progress], *, started: float | None = None
    ) -> bool:
        """Probe until done, failed for good or out of time (transient errors keep waiting);
        whether it passed."""
        begin = self.clock.monotonic() if started is None else started
        deadline = self.clock.monotonic() + self.plan.timeout_s
        last_said = self.clock.monotonic()
        detail = "no answer yet"
        while True:
            try:
                answer = probe()
            except RefusedError as exc:
                self._add(name, "FAIL", begin, str(exc))
                return False
            except SmokeError as exc:
                answer = Progress(False, str(exc))
            if answer.done:
                self._add(name, "ok", begin, answer.detail)
                return True
            detail = answer.detail
            if answer.failed:
                self._add(name, "FAIL", begin, detail)
                return False
            now = self.clock.monotonic()
            if now >= deadline:
                self._add(
                    name, "FAIL", begin, f"{detail} (gave up after {self.plan.timeout_s:g} s)"
                )
                return False
            if now - last_said >= self.progress_every_s:
                self.progress(f"  … {name}: {detail} ({now - begin:.0f} s)")
                last_said = now
            self.clock.sleep(min(self.plan.poll_s, max(deadline - now, 0.0)))

    def _add(self, name: str, status: Status, started: float | None, detail: str) -> None:
        seconds = None if started is None else self.clock.monotonic() - started
        result = CheckResult(name, status, seconds, detail)
        self.results.append(result)
        self.report(result)

    def _skip(self, name: str, flag: str) -> None:
        result = CheckResult(name, "skip", None, f"skipped by --skip {flag}")
        self.results.append(result)
        self.report(result)
