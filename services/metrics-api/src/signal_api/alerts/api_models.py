"""Response models of /v1/alerts/* (they document the API in OpenAPI)."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, Field

from signal_api.core.models import Meta

_MEASURES = (
    "The window's measures: events (the sample size) and, per rule, out_of_service_share; "
    "recent_avg_signal_dbm, baseline_avg_signal_dbm, signal_drop_db; weak, weak_share, devices."
)


class ActiveAlert(BaseModel):
    alert_id: str = Field(description="rule:area_kind:area, stable across cycles.")
    rule: Literal["out_of_service", "signal_drop", "coverage_hole"]
    area_kind: Literal["postal_code"]
    area: str
    state: Literal["pending", "firing"]
    since: dt.datetime = Field(description="Start of the episode (its first breaching window).")
    window_end: dt.datetime = Field(description="End of the newest window judged.")
    measures: dict[str, float] = Field(description=_MEASURES)
    sample_size: int = Field(description="Events behind the newest window's measures.")


class ActiveAlertsResponse(BaseModel):
    evaluated_at: dt.datetime = Field(description="Evaluation time of the newest cycle.")
    window_end: dt.datetime = Field(description="End of the newest window that cycle judged.")
    age_s: float = Field(description="Seconds from evaluated_at to now.")
    stale: bool = Field(description="True when the newest cycle is older than alert_stale_after_s.")
    areas_evaluated: int = Field(description="(rule, area) pairs the newest cycle judged.")
    alerts: list[ActiveAlert] = Field(description="Firing first, then pending; oldest first.")
    meta: Meta = Field(default_factory=Meta)


class AlertTransition(BaseModel):
    key: str = Field(description="alert_id|state|since: the delivery's deduplication key.")
    alert_id: str
    rule: str
    area_kind: str
    area: str
    previous: Literal["inactive", "pending", "firing", "resolved"]
    state: Literal["inactive", "pending", "firing", "resolved"]
    at: dt.datetime = Field(description="Evaluation time of the cycle that recorded it.")
    window_end: dt.datetime = Field(description="End of the window whose verdict caused it.")
    since: dt.datetime
    measures: dict[str, float] = Field(description=_MEASURES)
    summary: str
    correction: bool = Field(description="True when late data re-judged an earlier window.")


class AlertHistoryResponse(BaseModel):
    from_: dt.datetime = Field(serialization_alias="from")
    to: dt.datetime
    transitions: list[AlertTransition]
    meta: Meta = Field(default_factory=Meta)


class AlertRule(BaseModel):
    rule: str
    description: str
    thresholds: dict[str, Any]
    fire_after_windows: int = Field(description="Breaching windows in a row before it fires.")
    source: str = Field(description="Where the defaults come from.")
    hole_sources: dict[str, str] | None = None


class AlertRulesResponse(BaseModel):
    window_minutes: int
    horizon_minutes: int = Field(description="Late data this recent is re-judged (corrections).")
    resolve_after_windows: int = Field(description="Clear windows in a row before resolving.")
    settle_s: int = Field(description="A window is judged this long after it ends.")
    area_kinds: list[str]
    rules: list[AlertRule]
