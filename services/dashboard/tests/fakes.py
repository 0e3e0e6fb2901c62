"""A fake metrics-API client for AppTest: canned answers shaped like the API's, requests logged."""

from __future__ import annotations

import datetime as dt
from typing import Any

from signal_common.quality import band_definition
from signal_dashboard.adapters.api_client import ApiError, ApiRequest, ApiResponse
from signal_dashboard.core.filters import format_instant

NOW = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
OPERATORS = ("Movistar", "Orange", "Vodafone")
# The data's watermark every canned answer reports (the page shows it as "data as of").
WATERMARK = NOW - dt.timedelta(seconds=37)


def bands_body(**lte: Any) -> dict[str, Any]:
    """A /v1/meta/bands body: libs/common's definition, with `lte` overriding 4G values."""
    body = band_definition()
    if lte:
        body["networks"]["4G"].update(lte, overridden=True)
        body["overridden"] = True
    return body


def _iso(moment: dt.datetime) -> str:
    return format_instant(moment)


def withheld_coverage_row(code: str, events: int) -> dict[str, Any]:
    """A /v1/coverage row the API withholds (too few events, #24): counts kept, figures null."""
    return {
        "postal_code": code,
        "event_count": events,
        "events": events,
        "suppressed": "min_events",
        **dict.fromkeys(
            (
                "latitude", "longitude", "avg_signal_dbm", "out_of_service_share",
                "out_of_service_share_ci_low", "out_of_service_share_ci_high",
            )
        ),
    }  # fmt: skip


H3_ROWS: list[dict[str, Any]] = [
    {  # the worst served hexagon: most out of service
        "h3_cell": "89390cb1b5bffff", "h3_resolution": 9, "latitude": 41.6105, "longitude": -4.7003,
        "events": 320, "devices": 44, "devices_ci_low": 44, "devices_ci_high": 45,
        "suppressed": None, "avg_signal_dbm": -128.4, "avg_signal_dbm_ci_low": -129.6,
        "avg_signal_dbm_ci_high": -127.2, "signal_percentiles": {"p50": -129}, "band": "poor",
        "band_counts": {"excellent": 0, "good": 10, "fair": 40, "poor": 270},
        "out_of_service_share": 0.75, "out_of_service_share_ci_low": 0.6999,
        "out_of_service_share_ci_high": 0.7943,
    },
    {
        "h3_cell": "89390cb1a2fffff", "h3_resolution": 9, "latitude": 41.6502, "longitude": -4.7201,
        "events": 900, "devices": 130, "devices_ci_low": 129, "devices_ci_high": 132,
        "suppressed": None, "avg_signal_dbm": -84.9, "avg_signal_dbm_ci_low": -85.6,
        "avg_signal_dbm_ci_high": -84.2, "signal_percentiles": {"p50": -85}, "band": "good",
        "band_counts": {"excellent": 200, "good": 450, "fair": 200, "poor": 50},
        "out_of_service_share": 0.01, "out_of_service_share_ci_low": 0.0054,
        "out_of_service_share_ci_high": 0.0188,
    },
    {  # many events from two phones: withheld
        "h3_cell": "89390cb1b0fffff", "h3_resolution": 9, "latitude": 41.6301, "longitude": -4.7104,
        "events": 240, "devices": 2, "devices_ci_low": 2, "devices_ci_high": 2,
        "suppressed": "min_devices",
        **dict.fromkeys((
            "avg_signal_dbm", "avg_signal_dbm_ci_low", "avg_signal_dbm_ci_high",
            "signal_percentiles", "band", "band_counts", "out_of_service_share",
            "out_of_service_share_ci_low", "out_of_service_share_ci_high",
        )),
    },
]  # fmt: skip


WORST_CELLS: list[dict[str, Any]] = [
    {
        "rank": 1, "operator": "Movistar", "network_type": "4G", "cell_id": 41007,
        "events": 300, "devices": 40, "devices_ci_low": 40, "devices_ci_high": 41,
        "suppressed": None, "latitude": 41.6105, "longitude": -4.7003,
        "h3_cell": "89390cb1b5bffff", "avg_signal_dbm": -127.0, "avg_signal_dbm_ci_low": -128.1,
        "avg_signal_dbm_ci_high": -125.9, "signal_p10": -140, "signal_p50": -128,
        "out_of_service_share": 0.7, "out_of_service_share_ci_low": 0.6458,
        "out_of_service_share_ci_high": 0.7491,
    },
    {
        "rank": 2, "operator": "Orange", "network_type": "5G", "cell_id": 52001,
        "events": 800, "devices": 120, "devices_ci_low": 119, "devices_ci_high": 122,
        "suppressed": None, "latitude": 41.6502, "longitude": -4.7201,
        "h3_cell": "89390cb1a2fffff", "avg_signal_dbm": -86.0, "avg_signal_dbm_ci_low": -86.8,
        "avg_signal_dbm_ci_high": -85.2, "signal_p10": -104, "signal_p50": -86,
        "out_of_service_share": 0.02, "out_of_service_share_ci_low": 0.0122,
        "out_of_service_share_ci_high": 0.0326,
    },
    {
        "rank": 3, "operator": "Vodafone", "network_type": "3G", "cell_id": 30999,
        "events": 12, "devices": 3, "devices_ci_low": 3, "devices_ci_high": 3,
        "suppressed": "min_events",
        **dict.fromkeys((
            "latitude", "longitude", "h3_cell", "avg_signal_dbm", "avg_signal_dbm_ci_low",
            "avg_signal_dbm_ci_high", "signal_p10", "signal_p50", "out_of_service_share",
            "out_of_service_share_ci_low", "out_of_service_share_ci_high",
        )),
    },
]  # fmt: skip


def canned(path: str) -> dict[str, Any]:
    """A plausible body for each route (figures consistent within each body)."""
    minute = NOW - dt.timedelta(minutes=2)
    meta = {
        "stale": False,
        "cached": False,
        "watermark": _iso(WATERMARK),
        "newest_batch_time": _iso(NOW - dt.timedelta(seconds=20)),
        "queries": [
            {
                "name": path.rsplit("/", 1)[-1].replace("-", "_"),
                "sql_sha256": "ab" * 32,
                "partitions": [
                    {"table": "t", "first": "dt=2026-12-01/hour=7", "last": "dt=2026-12-01/hour=8",
                     "hours": 2}
                ],
            }
        ],
        "min_events": 20,
        "min_devices": 5,
    }  # fmt: skip
    if path == "/v1/meta/bands":
        return bands_body()
    series = {"from": _iso(NOW - dt.timedelta(hours=1)), "to": _iso(NOW), "granularity": "1m"}
    if path == "/v1/summary":
        return {
            "as_of": _iso(NOW),
            "window_start": _iso(minute),
            "events_per_min": 1234,
            "avg_signal_dbm": -91.25,
            "out_of_service_share": 0.0321,
            "freshness_s": 75.0,
            "newest_batch_time": _iso(NOW),
            "meta": meta,
        }
    if path == "/v1/pipeline":
        return {
            "from": series["from"],
            "to": series["to"],
            "as_of": _iso(NOW),
            "batches": 42,
            "rows_in": 10_000,
            "valid_rows": 9_800,
            "quarantined_rows": 150,
            "duplicates_removed": 50,
            "late_dropped": 0,
            "millis_behind_latest": 1200,
            "max_millis_behind_latest": 5000,
            "events_per_s": 2.72,
            "throughput_events_per_s": 19.96,
            "throughput_from": _iso(NOW - dt.timedelta(minutes=30)),
            "throughput_to": _iso(NOW - dt.timedelta(seconds=20)),
            "quarantine_rate": 0.015,
            "quarantine_rate_by_reason": {"bad_json": 0.01, "missing_field": 0.005},
            "quarantined_by_reason": {"bad_json": 100, "missing_field": 50},
            "avg_processing_ms": 850.0,
            "max_lateness_s": 30.0,
            "newest_batch_time": _iso(NOW),
            "newest_event_time": _iso(dt.datetime.now(dt.UTC)),
            "batch_freshness_s": 3.0,
            "event_freshness_s": 14.0,
            "meta": meta,
        }
    if path == "/v1/kpis/signal-strength":
        rows = [
            {
                "bucket_start": _iso(minute - dt.timedelta(minutes=m)),
                "operator": op,
                "network_type": None,
                "event_count": 100 + m,
                "avg_signal_dbm": -90.0 - i,
                "min_signal_dbm": -120,
                "max_signal_dbm": -60,
            }
            for m in range(5)
            for i, op in enumerate(OPERATORS)
        ]
        return {**series, "rows": rows, "meta": meta}
    if path == "/v1/kpis/gps-precision":
        rows = [
            {
                "bucket_start": _iso(minute - dt.timedelta(minutes=m)),
                "provider": p,
                "event_count": 50,
                "avg_precision_m": 5.0 + m,
                "min_precision_m": 1.0,
                "max_precision_m": 40.0,
                "avg_satellites": 10.0 if p == "gps" else None,
            }
            for m in range(5)
            for p in ("gps", "network", "fused")
        ]
        return {**series, "rows": rows, "meta": meta}
    if path == "/v1/kpis/status-counts":
        rows = [
            {
                "bucket_start": _iso(minute - dt.timedelta(minutes=m)),
                "postal_code": pc,
                "status": st,
                "event_count": n,
            }
            for m in range(3)
            for pc, st, n in (
                ("47014", "OUT_OF_SERVICE", 40),
                ("47014", "IN_SERVICE", 10),
                ("47001", "IN_SERVICE", 80),
                ("47001", "OUT_OF_SERVICE", 1),
            )
        ]
        return {**series, "rows": rows, "meta": meta}
    if path == "/v1/kpis/signal-quality":
        rows = [
            {
                "operator": op,
                "network_type": "4G",
                "event_count": 100,
                "band_counts": {"excellent": 10, "good": 40, "fair": 30, "poor": 20},
                "band_shares": {"excellent": 0.1, "good": 0.4, "fair": 0.3, "poor": 0.2},
            }
            for op in OPERATORS
        ]
        return {**series, "granularity": None, "rows": rows, "meta": meta}
    if path == "/v1/coverage":
        rows = [
            {
                "postal_code": "47014",
                "event_count": 500,
                "latitude": 41.61,
                "longitude": -4.70,
                "avg_signal_dbm": -130.0,
                "out_of_service_share": 0.8,
                # Wilson 95 % of 400/500 and 20/2000 (as the API computes them)
                "out_of_service_share_ci_low": 0.7627,
                "out_of_service_share_ci_high": 0.8327,
                "events": 500,
                "devices": 61,
                "signal_percentiles": {"p10": -141, "p50": -131},
                "suppressed": None,
            },
            {
                "postal_code": "47001",
                "event_count": 2000,
                "latitude": 41.65,
                "longitude": -4.72,
                "avg_signal_dbm": -85.0,
                "out_of_service_share": 0.01,
                "out_of_service_share_ci_low": 0.0065,
                "out_of_service_share_ci_high": 0.0154,
                "events": 2000,
                "devices": 240,
                "signal_percentiles": {"p10": -101, "p50": -85},
                "suppressed": None,
            },
            withheld_coverage_row("47100", 7),
        ]
        return {**series, "granularity": None, "rows": rows, "meta": meta}
    if path == "/v1/cells/worst":
        return {**series, "granularity": None, "top": 10, "cells": 3, "withheld": 1,
                "rows": WORST_CELLS, "meta": meta}  # fmt: skip
    if path == "/v1/coverage/h3":
        return {**series, "granularity": None, "resolution": 9, "rows": H3_ROWS, "meta": meta}
    if path in ALERT_BODIES:
        body = ALERT_BODIES[path]()
        return body if path == "/v1/alerts/rules" else {**body, "meta": meta}
    raise KeyError(path)


def _active_body() -> dict[str, Any]:
    evaluated = NOW - dt.timedelta(seconds=30)
    return {
        "evaluated_at": _iso(evaluated),
        "window_end": _iso(NOW - dt.timedelta(minutes=2)),
        "age_s": 30.0,
        "stale": False,
        "areas_evaluated": 15,
        "alerts": [
            {
                "alert_id": "out_of_service:postal_code:47014",
                "rule": "out_of_service",
                "area_kind": "postal_code",
                "area": "47014",
                "state": "firing",
                "since": _iso(NOW - dt.timedelta(minutes=22)),
                "window_end": _iso(NOW - dt.timedelta(minutes=2)),
                "measures": {"events": 180.0, "out_of_service_share": 0.8},
                "sample_size": 180,
            },
            {
                "alert_id": "coverage_hole:postal_code:47002",
                "rule": "coverage_hole",
                "area_kind": "postal_code",
                "area": "47002",
                "state": "pending",
                "since": _iso(NOW - dt.timedelta(hours=2)),
                "window_end": _iso(NOW - dt.timedelta(minutes=2)),
                "measures": {"events": 64.0, "weak": 24.0, "weak_share": 0.375, "devices": 7.0},
                "sample_size": 64,
            },
        ],
    }


def _transition(
    area: str, rule: str, previous: str, state: str, at: dt.datetime, since: dt.datetime,
    *, correction: bool = False,
) -> dict[str, Any]:  # fmt: skip
    alert_id = f"{rule}:postal_code:{area}"
    return {
        "key": f"{alert_id}|{state}|{_iso(since)}",
        "alert_id": alert_id,
        "rule": rule,
        "area_kind": "postal_code",
        "area": area,
        "previous": previous,
        "state": state,
        "at": _iso(at),
        "window_end": _iso(at - dt.timedelta(minutes=1)),
        "since": _iso(since),
        "measures": {"events": 100.0},
        "summary": f"{rule} {state} in {area}",
        "correction": correction,
    }


# The canned history: 47014 went pending then firing (still firing); 47008 fired and resolved.
HISTORY_TIMES = {
    "47014_pending": NOW - dt.timedelta(minutes=21),
    "47014_firing": NOW - dt.timedelta(minutes=16),
    "47008_pending": NOW - dt.timedelta(minutes=50),
    "47008_firing": NOW - dt.timedelta(minutes=45),
    "47008_resolved": NOW - dt.timedelta(minutes=30),
}


def _history_body() -> dict[str, Any]:
    t = HISTORY_TIMES
    s14 = NOW - dt.timedelta(minutes=22)
    s08 = NOW - dt.timedelta(minutes=51)
    return {
        "from": _iso(NOW - dt.timedelta(hours=1)),
        "to": _iso(NOW),
        "transitions": [
            _transition("47008", "signal_drop", "inactive", "pending", t["47008_pending"], s08),
            _transition("47008", "signal_drop", "pending", "firing", t["47008_firing"], s08),
            _transition("47008", "signal_drop", "firing", "resolved", t["47008_resolved"], s08),
            _transition("47014", "out_of_service", "inactive", "pending", t["47014_pending"], s14),
            _transition(
                "47014",
                "out_of_service",
                "pending",
                "firing",
                t["47014_firing"],
                s14,
                correction=True,
            ),
        ],
    }


def _rules_body() -> dict[str, Any]:
    return {
        "window_minutes": 5,
        "horizon_minutes": 60,
        "resolve_after_windows": 3,
        "settle_s": 60,
        "area_kinds": ["postal_code"],
        "rules": [
            {
                "rule": "out_of_service",
                "description": "share of events OUT_OF_SERVICE over the trailing recent_minutes "
                "at the window's end is at least share",
                "thresholds": {"share": 0.2, "min_events": 20, "recent_minutes": 15},
                "fire_after_windows": 1,
                "source": "metrics-api 0.4 /v1/alerts thresholds",
            },
            {
                "rule": "coverage_hole",
                "description": "in one window, at least weak_share of the samples are at or "
                "below their RAT's hole_max_dbm",
                "thresholds": {
                    "weak_share": 0.3,
                    "min_events": 50,
                    "min_devices": 5,
                    "hole_max_dbm": {"4G": -110, "3G": -105},
                },
                "fire_after_windows": 3,
                "source": "drive-test practice: RSRP <= -110 dBm",
                "hole_sources": {"4G": "3GPP TS 36.133 RSRP range", "3G": "RSCP -105 dBm"},
            },
        ],
    }


ALERT_BODIES = {
    "/v1/alerts/active": _active_body,
    "/v1/alerts/history": _history_body,
    "/v1/alerts/rules": _rules_body,
}


class FakeClient:
    """Implements the dashboard's client protocol; `fail` makes every call raise ApiError."""

    base_url = "http://api.test"

    def __init__(self) -> None:
        self.requests: list[ApiRequest] = []
        self.fail: str | None = None
        self.bodies: dict[str, dict[str, Any]] = {}
        self.errors: dict[str, ApiError] = {}  # per route, as the real client raises them

    def _get(self, path: str, params: list[tuple[str, str]]) -> ApiResponse:
        request = ApiRequest(path, tuple(params))
        self.requests.append(request)
        if self.fail:
            raise ApiError(self.fail, status=503)
        if path in self.errors:
            raise self.errors[path]
        return ApiResponse(request, self.bodies.get(path) or canned(path), dt.datetime.now(dt.UTC))

    @staticmethod
    def _window(start: dt.datetime, end: dt.datetime) -> list[tuple[str, str]]:
        return [("from", _iso(start)), ("to", _iso(end))]

    def summary(self) -> ApiResponse:
        return self._get("/v1/summary", [])

    def pipeline(self, start: dt.datetime, end: dt.datetime) -> ApiResponse:
        return self._get("/v1/pipeline", self._window(start, end))

    def signal_strength(
        self, start, end, granularity, *, operators=(), network_types=(), by_network_type=True
    ) -> ApiResponse:  # type: ignore[no-untyped-def]
        params = [*self._window(start, end), ("granularity", granularity)]
        params += [("operator", o) for o in operators]
        params += [("network_type", n) for n in network_types]
        params.append(("by_network_type", str(by_network_type).lower()))
        return self._get("/v1/kpis/signal-strength", params)

    def gps_precision(self, start, end, granularity) -> ApiResponse:  # type: ignore[no-untyped-def]
        return self._get(
            "/v1/kpis/gps-precision", [*self._window(start, end), ("granularity", granularity)]
        )

    def status_counts(self, start, end, granularity, *, postal_codes=(), top=None) -> ApiResponse:  # type: ignore[no-untyped-def]
        params = [*self._window(start, end), ("granularity", granularity)]
        params += [("postal_code", p) for p in postal_codes]
        if top is not None:
            params.append(("top", str(top)))
        return self._get("/v1/kpis/status-counts", params)

    def signal_quality(self, start, end, *, operators=(), network_types=()) -> ApiResponse:  # type: ignore[no-untyped-def]
        params = [*self._window(start, end)]
        params += [("operator", o) for o in operators]
        params += [("network_type", n) for n in network_types]
        return self._get("/v1/kpis/signal-quality", params)

    def coverage(self, start, end, *, postal_codes=(), percentiles=()) -> ApiResponse:  # type: ignore[no-untyped-def]
        params = [*self._window(start, end), *[("postal_code", p) for p in postal_codes]]
        if percentiles:
            params.append(("percentiles", ",".join(str(p) for p in percentiles)))
        return self._get("/v1/coverage", params)

    def coverage_h3(self, start, end, *, res) -> ApiResponse:  # type: ignore[no-untyped-def]
        return self._get("/v1/coverage/h3", [("res", str(res)), *self._window(start, end)])

    def worst_cells(self, start, end, *, top) -> ApiResponse:  # type: ignore[no-untyped-def]
        return self._get("/v1/cells/worst", [("top", str(top)), *self._window(start, end)])

    def bands(self) -> ApiResponse:
        return self._get("/v1/meta/bands", [])

    def alerts_active(self, *, postal_codes=()) -> ApiResponse:  # type: ignore[no-untyped-def]
        return self._get("/v1/alerts/active", [("postal_code", p) for p in postal_codes])

    def alerts_history(self, start, end, *, postal_codes=()) -> ApiResponse:  # type: ignore[no-untyped-def]
        params = [*self._window(start, end), *[("postal_code", p) for p in postal_codes]]
        return self._get("/v1/alerts/history", params)

    def alert_rules(self) -> ApiResponse:
        return self._get("/v1/alerts/rules", [])
