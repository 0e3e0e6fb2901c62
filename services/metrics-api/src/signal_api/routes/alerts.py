"""/v1/alerts (and its alias /v1/alerts/active), /v1/alerts/history and /v1/alerts/rules: the
alert evaluator's state, its transitions and the rule definitions (included in the network
router). No alert is computed per request: one evaluator judges the rules each minute."""

from __future__ import annotations

from typing import Any

import anyio
from fastapi import APIRouter, Request

from signal_api.alerts.api_models import (
    ActiveAlertsResponse,
    AlertHistoryResponse,
    AlertRulesResponse,
)
from signal_api.alerts.reader import active_alerts, transitions
from signal_api.alerts.rules import rules_from_settings
from signal_api.alerts.store import AlertStore
from signal_api.core.params import POSTAL_CODE_MAX_LENGTH, time_range
from signal_api.deps import Context
from signal_api.query_params import RANGE_LIMIT_EXTENSION, FromParam, PostalParam, ToParam
from signal_api.wiring import build_store

router = APIRouter(prefix="/alerts")
MAX_HISTORY_HOURS = 24  # one file per cycle: 1,440 a day at the default cadence


def _store(request: Request, ctx: Context) -> AlertStore:
    """The app's alert_events reader (built on first use from its settings)."""
    store: AlertStore | None = getattr(request.app.state, "alert_store", None)
    if store is None:
        store = request.app.state.alert_store = build_store(ctx.settings)
    return store


@router.get("", response_model=ActiveAlertsResponse)
@router.get("/active", response_model=ActiveAlertsResponse)
async def active(request: Request, ctx: Context, postal_code: PostalParam = None) -> dict[str, Any]:
    """Firing and pending alerts now, from the evaluator's newest cycle (503 if it never ran)."""
    codes = ctx.filters("postal_code", postal_code, max_length=POSTAL_CODE_MAX_LENGTH)
    store, now = _store(request, ctx), ctx.now()
    settings = ctx.settings

    def read() -> dict[str, Any]:
        return active_alerts(
            store,
            now=now,
            stale_after_s=settings.alert_stale_after_s,
            postal_codes=codes,
        )

    return await anyio.to_thread.run_sync(read)


@router.get(
    "/history",
    response_model=AlertHistoryResponse,
    openapi_extra={RANGE_LIMIT_EXTENSION: MAX_HISTORY_HOURS},
)
async def history(
    request: Request,
    ctx: Context,
    from_: FromParam = None,
    to: ToParam = None,
    postal_code: PostalParam = None,
) -> dict[str, Any]:
    """Alert transitions recorded by the cycles evaluated in [from, to) (at most 24 h)."""
    window = time_range(from_, to, now=ctx.now(), max_hours=MAX_HISTORY_HOURS)
    codes = ctx.filters("postal_code", postal_code, max_length=POSTAL_CODE_MAX_LENGTH)
    store = _store(request, ctx)
    found = await anyio.to_thread.run_sync(
        lambda: transitions(store, window.start, window.end, postal_codes=codes)
    )
    return {"from_": window.start, "to": window.end, "transitions": found}


@router.get("/rules", response_model=AlertRulesResponse)
async def rules(ctx: Context) -> dict[str, Any]:
    """The alert rules: window, horizon, hysteresis, thresholds and their sources."""
    return rules_from_settings(ctx.settings).document()
