"""Check verdicts over the answers each probe gets, and how results are printed."""

from __future__ import annotations

import datetime as dt

from signal_smoke.core.checks import (
    CheckResult,
    WindowTotals,
    alarms_progress,
    dashboard_progress,
    exit_code,
    format_line,
    format_summary,
    glue_progress,
    pipeline_progress,
    summary_progress,
    window_totals,
)

W = dt.datetime(2026, 12, 1, 18, 2, tzinfo=dt.UTC)


def test_lines_show_status_name_time_and_detail() -> None:
    line = format_line(CheckResult("events visible in /v1/summary", "ok", 41.23, "20 of 20"))
    assert line == "ok    events visible in /v1/summary           41.2 s   20 of 20"
    skipped = format_line(CheckResult("Glue job RUNNING", "skip", None, "skipped by --skip glue"))
    assert skipped == "skip  Glue job RUNNING" + " " * 30 + "   skipped by --skip glue"
    assert format_line(CheckResult("dashboard answers", "FAIL", 300.0)).startswith(
        "FAIL  dashboard answers"
    )


def test_the_summary_and_exit_code() -> None:
    ok = CheckResult("a", "ok", 1.0)
    bad = CheckResult("b", "FAIL", 2.0)
    skip = CheckResult("c", "skip")
    assert format_summary([ok, skip], 3.04) == "smoke passed: 1 ok, 0 failed, 1 skipped in 3.0 s"
    assert format_summary([ok, bad, skip], 3.0) == (
        "smoke FAILED: 1 ok, 1 failed, 1 skipped in 3.0 s (failed: b)"
    )
    assert (exit_code([ok, skip]), exit_code([ok, bad]), exit_code([skip])) == (0, 1, 1)


def _summary(
    count: int, average: float | None, window: str = "2026-12-01T18:02:00Z"
) -> dict[str, object]:
    return {"window_start": window, "events_per_min": count, "avg_signal_dbm": average}


def test_the_summary_must_grow_by_exactly_the_marked_events() -> None:
    before = WindowTotals(7, -700)  # 7 events of -100 dBm already in the minute
    expected = WindowTotals(20, -1600)  # 20 marked events of -80 dBm
    assert window_totals(_summary(7, -100.0), W) == before
    # 27 events averaging (-700 - 1600) / 27 dBm
    done = summary_progress(
        _summary(27, -2300 / 27), window_start=W, before=before, expected=expected
    )
    assert done.done
    assert (
        done.detail == "window 2026-12-01 18:02 UTC: 20 of 20 marked events (above 7 already there)"
    )
    partial = summary_progress(
        _summary(17, -1500 / 17), window_start=W, before=before, expected=expected
    )
    assert (partial.done, partial.failed) == (False, False)
    assert partial.detail == "window 2026-12-01 18:02 UTC: 10 of 20 marked events"
    # 20 new events, but of another level: another run's (or anyone's), not these
    other = summary_progress(
        _summary(27, -2700 / 27), window_start=W, before=before, expected=expected
    )
    assert not other.done
    assert (
        "20 new events with -2000 dBm in all, not the 20 marked ones with -1600 dBm" in other.detail
    )
    more = summary_progress(
        _summary(28, -2390 / 28), window_start=W, before=before, expected=expected
    )
    assert not more.done


def test_a_summary_of_another_minute_is_not_yet() -> None:
    none = WindowTotals(0, 0)
    other = summary_progress(
        _summary(500, -90.0, "2026-12-01T18:01:00+00:00"),
        window_start=W,
        before=none,
        expected=WindowTotals(1, -80),
    )
    assert not other.done
    assert "not reported yet" in other.detail
    assert window_totals(_summary(0, None, None), W) is None  # type: ignore[arg-type]


def test_the_pipeline_needs_valid_rows_and_a_batch_as_late_as_the_marked_events() -> None:
    body = {"batches": 3, "valid_rows": 20, "max_lateness_s": 7261.5}
    assert pipeline_progress(body, expected=20, min_lateness_s=7200).done
    assert not pipeline_progress(body, expected=21, min_lateness_s=7200).done
    # rows of live traffic only: none as late as the marker minute
    fresh = pipeline_progress({**body, "max_lateness_s": 4.0}, expected=20, min_lateness_s=7200)
    assert not fresh.done
    assert "max lateness 4 s (marked: 7200 s or more)" in fresh.detail
    assert not pipeline_progress(
        {"batches": 0, "valid_rows": 0, "max_lateness_s": None}, expected=1, min_lateness_s=1
    ).done


def _run(state: str, started: int, **extra: str) -> dict[str, object]:
    return {"Id": f"jr_{state.lower()}", "JobRunState": state,
            "StartedOn": dt.datetime(2026, 12, 1, started, tzinfo=dt.UTC), **extra}  # fmt: skip


def test_the_newest_glue_run_must_be_running() -> None:
    assert glue_progress("j", [_run("FAILED", 9), _run("RUNNING", 10)]).done
    starting = glue_progress("j", [_run("STARTING", 10)])
    assert (starting.done, starting.failed) == (False, False)
    stopped = glue_progress("j", [_run("RUNNING", 9), _run("STOPPED", 10, ErrorMessage="by user")])
    assert stopped.failed
    assert stopped.detail == "the newest run jr_stopped is STOPPED, not RUNNING: by user"
    never = glue_progress("j", [])
    assert never.failed
    assert never.detail == "the Glue job j has no run: nothing started it"


def test_alarms_must_exist_and_be_ok() -> None:
    ok = [{"AlarmName": "a", "StateValue": "OK"}, {"AlarmName": "b", "StateValue": "OK"}]
    assert alarms_progress(ok, wanted=("a", "b"), prefix=None).done
    assert alarms_progress(ok, wanted=(), prefix="x").detail == "2 alarms OK"
    firing = alarms_progress(
        [*ok, {"AlarmName": "c", "StateValue": "ALARM"}], wanted=(), prefix="x"
    )
    assert (firing.done, firing.failed) == (False, False)  # it may recover within the timeout
    assert firing.detail == "1 of 3 not OK: c ALARM"
    missing = alarms_progress(ok, wanted=("a", "z"), prefix=None)
    assert missing.failed
    assert missing.detail == "no such alarm: z"
    assert alarms_progress([], wanted=(), prefix="Sig").failed


def test_the_dashboard_health_is_streamlits_ok() -> None:
    assert dashboard_progress(200, "ok").done
    assert not dashboard_progress(200, "<html>").done
    assert not dashboard_progress(503, "").done
