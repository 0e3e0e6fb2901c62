"""The alert rules as data: three kinds, their defaults and where each default comes from.

Every rule is judged per postal code on fixed, epoch-aligned windows of `window_minutes`
(5 minutes by default, see README "Alerts"), each window's verdict being breach, clear or
unknown (too few samples to say). The lifecycle (signal_api.alerts.lifecycle) turns the verdicts
into pending -> firing -> resolved.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from signal_common.quality import DEFAULT_BANDS, QualityBands, bands_with_overrides

Verdict = Literal["breach", "clear", "unknown"]
AREA_KINDS = ("postal_code",)  # "h3_7" / "h3_9" once #24's hexagon partials exist


@dataclass(frozen=True)
class OutOfServiceRule:
    """Out-of-service share over the trailing `recent_minutes` at a window's end."""

    share: float = 0.2
    min_events: int = 20
    recent_minutes: int = 15
    fire_after_windows: int = 1
    kind: str = "out_of_service"
    source: str = (
        "metrics-api 0.4 /v1/alerts thresholds (core/alerts.py): 20 % of events OUT_OF_SERVICE "
        "over the last 15 minutes, at least 20 events"
    )

    def verdict(self, *, events: int, out_of_service: int) -> Verdict:
        if events < self.min_events:
            return "unknown"
        return "breach" if out_of_service / events >= self.share else "clear"


@dataclass(frozen=True)
class SignalDropRule:
    """Average signal over the trailing `recent_minutes` vs the `baseline_minutes` before."""

    drop_db: float = 10.0
    min_events: int = 20
    recent_minutes: int = 15
    baseline_minutes: int = 24 * 60
    min_baseline_events: int = 100
    fire_after_windows: int = 1
    kind: str = "signal_drop"
    source: str = (
        "metrics-api 0.4 /v1/alerts thresholds (core/alerts.py): average signal 10 dB below "
        "the trailing 24 h baseline over the last 15 minutes, at least 20 events; at least 100 "
        "baseline events is this project's choice (#25): in a fresh stack's first cycles the "
        "baseline is a few minutes of events, whose average alone can sit 10 dB off. Signal "
        "within a postal code spreads ~15 dB (11-13 dB per RAT, as the local producer draws it, "
        "plus the gaps between RATs' means), so the mean of 100 baseline events has a standard "
        "error of 1.5 dB: the drop measured is the last 15 minutes', not a thin baseline's "
        "noise. 100 is 5 x min_events, about 75 minutes of a code at that minimum rate"
    )

    def verdict(
        self,
        *,
        events: int,
        recent_avg: float | None,
        baseline_avg: float | None,
        baseline_events: int,
    ) -> Verdict:
        if events < self.min_events or recent_avg is None or baseline_avg is None:
            return "unknown"
        if baseline_events < self.min_baseline_events:
            return "unknown"  # too thin a baseline to measure a drop against
        return "breach" if baseline_avg - recent_avg >= self.drop_db else "clear"


@dataclass(frozen=True)
class CoverageHoleRule:
    """Share of weak samples (at or below the RAT's hole threshold) in one window."""

    weak_share: float = 0.3
    min_events: int = 50
    min_devices: int = 5
    fire_after_windows: int = 3
    kind: str = "coverage_hole"
    source: str = (
        "weak sample per RAT from signal_common.quality (hole_max_dbm: drive-test practice, "
        "RSRP <= -110 dBm on LTE); count and device thresholds in the spirit of the FCC BDC "
        "challenge process (an area counts as uncovered only with enough tests, from more than "
        "one device, over time); 30 % / 50 events / 5 devices / 3 windows are this project's "
        "choice, tuned on the local producer's volumes"
    )

    def verdict(self, *, events: int, weak: int, devices: int) -> Verdict:
        if events < self.min_events:
            return "unknown"
        if devices < self.min_devices:
            return "clear"  # many samples from too few phones: one bad handset is no hole
        return "breach" if weak / events >= self.weak_share else "clear"


@dataclass(frozen=True)
class AlertRules:
    """The whole definition: window, horizon, hysteresis and the three rules."""

    window_minutes: int = 5
    horizon_minutes: int = 60
    resolve_after_windows: int = 3
    settle_s: int = 60
    out_of_service: OutOfServiceRule = OutOfServiceRule()
    signal_drop: SignalDropRule = SignalDropRule()
    coverage_hole: CoverageHoleRule = CoverageHoleRule()
    bands: Mapping[str, QualityBands] = field(default_factory=lambda: dict(DEFAULT_BANDS))

    def __post_init__(self) -> None:
        if 60 % self.window_minutes and self.window_minutes % 60:
            raise ValueError("alert window_minutes must divide an hour (or be whole hours)")
        for minutes in (self.out_of_service.recent_minutes, self.signal_drop.recent_minutes):
            if minutes % self.window_minutes:
                raise ValueError("recent_minutes must be a multiple of window_minutes")
        if self.signal_drop.baseline_minutes % self.window_minutes:
            raise ValueError("baseline_minutes must be a multiple of window_minutes")
        if self.horizon_minutes < self.window_minutes:
            raise ValueError("the alert horizon must hold at least one window")

    @property
    def window(self) -> dt.timedelta:
        return dt.timedelta(minutes=self.window_minutes)

    @property
    def horizon(self) -> dt.timedelta:
        return dt.timedelta(minutes=self.horizon_minutes)

    def fire_after(self, rule: str) -> int:
        return int(getattr(self, rule).fire_after_windows)

    def last_closed_window_end(self, at: dt.datetime) -> dt.datetime:
        """The end of the newest window that is closed at `at` (ended `settle_s` ago)."""
        seconds = self.window_minutes * 60
        ready = int((at - dt.timedelta(seconds=self.settle_s)).timestamp())
        return dt.datetime.fromtimestamp(ready // seconds * seconds, dt.UTC)

    def document(self) -> dict[str, Any]:
        """The definition as JSON for GET /v1/alerts/rules."""
        oos, drop, hole = self.out_of_service, self.signal_drop, self.coverage_hole
        return {
            "window_minutes": self.window_minutes,
            "horizon_minutes": self.horizon_minutes,
            "resolve_after_windows": self.resolve_after_windows,
            "settle_s": self.settle_s,
            "area_kinds": list(AREA_KINDS),
            "rules": [
                {
                    "rule": oos.kind,
                    "description": "share of events OUT_OF_SERVICE over the trailing "
                    "recent_minutes at the window's end is at least share",
                    "thresholds": {
                        "share": oos.share,
                        "min_events": oos.min_events,
                        "recent_minutes": oos.recent_minutes,
                    },
                    "fire_after_windows": oos.fire_after_windows,
                    "source": oos.source,
                },
                {
                    "rule": drop.kind,
                    "description": "average signal over the trailing recent_minutes is at "
                    "least drop_db below its average over the baseline_minutes before, with at "
                    "least min_events recent and min_baseline_events baseline events",
                    "thresholds": {
                        "drop_db": drop.drop_db,
                        "min_events": drop.min_events,
                        "recent_minutes": drop.recent_minutes,
                        "baseline_minutes": drop.baseline_minutes,
                        "min_baseline_events": drop.min_baseline_events,
                    },
                    "fire_after_windows": drop.fire_after_windows,
                    "source": drop.source,
                },
                {
                    "rule": hole.kind,
                    "description": "in one window, at least weak_share of the samples are at "
                    "or below their RAT's hole_max_dbm, with at least min_events events from "
                    "at least min_devices distinct devices",
                    "thresholds": {
                        "weak_share": hole.weak_share,
                        "min_events": hole.min_events,
                        "min_devices": hole.min_devices,
                        "hole_max_dbm": {n: b.hole_max_dbm for n, b in self.bands.items()},
                    },
                    "fire_after_windows": hole.fire_after_windows,
                    "source": hole.source,
                    "hole_sources": {n: b.hole_source for n, b in self.bands.items()},
                },
            ],
        }


def rules_from_settings(settings: Any) -> AlertRules:
    """The rules with the settings' overrides (SIGNAL_API_ALERT_*; see settings.py)."""
    s = settings
    # the weak-sample threshold is the bands' hole_max_dbm, overridden where the bands are
    # (quality_band_overrides, the processor's value), so one setting moves both
    overrides = getattr(s, "quality_band_overrides", None) or {}
    return AlertRules(
        window_minutes=s.alert_window_minutes,
        horizon_minutes=s.alert_horizon_minutes,
        resolve_after_windows=s.alert_resolve_after_windows,
        settle_s=s.complete_after_s,
        out_of_service=OutOfServiceRule(
            share=s.alert_out_of_service_share,
            min_events=s.alert_min_events,
            recent_minutes=s.alert_recent_minutes,
            fire_after_windows=s.alert_out_of_service_windows,
        ),
        signal_drop=SignalDropRule(
            drop_db=s.alert_signal_drop_db,
            min_events=s.alert_min_events,
            recent_minutes=s.alert_recent_minutes,
            baseline_minutes=s.alert_baseline_minutes,
            min_baseline_events=s.alert_min_baseline_events,
            fire_after_windows=s.alert_signal_drop_windows,
        ),
        coverage_hole=CoverageHoleRule(
            weak_share=s.alert_hole_share,
            min_events=s.alert_hole_min_events,
            min_devices=s.alert_hole_min_devices,
            fire_after_windows=s.alert_hole_windows,
        ),
        bands=bands_with_overrides(overrides),
    )
