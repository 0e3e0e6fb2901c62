"""A small typed client of the metrics API on httpx: the dashboard's only data source.

Timeouts on every request, bounded jittered retries on 5xx and connection errors, the
`X-API-Key` header, and the API's error JSON (`{"error": {"code", "message", ...}}`) turned into
one readable sentence.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import random
import shlex
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx

from signal_common.aws import backoff_s
from signal_dashboard.core.filters import format_instant

log = logging.getLogger(__name__)

# 504 is the API's "query timed out" (the Athena query was cancelled): worth one more try.
_RETRY_STATUSES = frozenset({500, 502, 503, 504})
# 503s that are an answer, not a hiccup: asking again within the second changes nothing.
_FINAL_CODES = frozenset({"alerts_not_evaluated"})
# Longest pause between two attempts, in seconds.
_BACKOFF_CAP_S = 4.0


@dataclass(frozen=True)
class ApiRequest:
    """One GET request to the API: a path and its query parameters, in order."""

    path: str
    params: tuple[tuple[str, str], ...] = ()

    def url(self, base_url: str) -> str:
        """The full URL, as anyone can reproduce it."""
        query = urlencode(self.params)
        return f"{base_url}{self.path}" + (f"?{query}" if query else "")

    def curl(self, base_url: str) -> str:
        """A curl command reproducing the request (the key as a placeholder)."""
        return f"curl -H 'X-API-Key: $SIGNAL_API_KEY' {shlex.quote(self.url(base_url))}"


class ApiError(Exception):
    """The API could not give an answer; `str()` is a sentence an engineer can act on."""

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None):
        super().__init__(message)
        self.status = status
        self.code = code


@dataclass(frozen=True)
class ApiResponse:
    """A successful answer: the JSON body, the request behind it and when it arrived."""

    request: ApiRequest
    body: dict[str, Any]
    received_at: dt.datetime


def _window(start: dt.datetime, end: dt.datetime) -> list[tuple[str, str]]:
    return [("from", format_instant(start)), ("to", format_instant(end))]


def _repeat(name: str, values: Iterable[str]) -> list[tuple[str, str]]:
    return [(name, value) for value in values]


def error_message(response: httpx.Response) -> str:
    """The API's error JSON as one sentence (falls back to the status line)."""
    prefix = f"the metrics API answered {response.status_code}"
    try:
        error = response.json().get("error") or {}
    except ValueError:
        error = {}
    if not isinstance(error, dict) or not error.get("message"):
        reason = response.reason_phrase or "error"
        return f"{prefix} ({reason})"
    message = f"{prefix}: {error['message']}"
    if error.get("allowed"):
        message += f" (allowed: {', '.join(map(str, error['allowed']))})"
    if response.status_code == 429 and response.headers.get("Retry-After"):
        message += f"; retry after {response.headers['Retry-After']} s"
    return message


class ApiClient:
    """Typed requests to the metrics API's v1 routes; every method returns an `ApiResponse`."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        timeout_s: float = 10.0,
        retries: int = 2,
        backoff_base_s: float = 0.25,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
        rng: random.Random | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._retries = retries
        self._backoff_base_s = backoff_base_s
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._clock = clock
        self._timeout_s = timeout_s
        headers = {"Accept": "application/json", "User-Agent": "signal-dashboard"}
        if api_key:
            headers["X-API-Key"] = api_key
        self._http = httpx.Client(
            base_url=self.base_url,
            headers=headers,
            timeout=httpx.Timeout(timeout_s),
            transport=transport,
        )

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def get(self, request: ApiRequest) -> ApiResponse:
        """GET a request, retrying 5xx and connection errors; raise ApiError when it fails."""
        last: ApiError | None = None
        for attempt in range(self._retries + 1):
            if attempt:
                # retry `attempt` (from 1) waits with full jitter under base * 2**(attempt - 1),
                # capped so a refresh never waits long
                self._sleep(
                    backoff_s(
                        attempt, base_s=self._backoff_base_s, cap_s=_BACKOFF_CAP_S, rng=self._rng
                    )
                )
            try:
                response = self._http.get(request.path, params=list(request.params))
            except httpx.TimeoutException:
                last = ApiError(
                    f"the metrics API at {self.base_url} did not answer within "
                    f"{self._timeout_s:g} s"
                )
            except httpx.TransportError as exc:
                last = ApiError(f"cannot reach the metrics API at {self.base_url}: {exc}")
            else:
                if response.status_code == 200:
                    try:
                        body = response.json()
                    except ValueError:
                        raise ApiError(
                            f"the metrics API at {self.base_url} answered with something other "
                            "than JSON",
                            status=200,
                        ) from None
                    return ApiResponse(request, body, self._clock())
                code = None
                with contextlib.suppress(ValueError, AttributeError):
                    code = (response.json().get("error") or {}).get("code")
                last = ApiError(error_message(response), status=response.status_code, code=code)
                if response.status_code not in _RETRY_STATUSES or code in _FINAL_CODES:
                    raise last
            log.warning(
                "metrics API request failed",
                extra={"path": request.path, "attempt": attempt + 1, "error": str(last)},
            )
        assert last is not None
        raise last

    # -- the v1 routes the dashboard reads ---------------------------------------------------

    def summary(self) -> ApiResponse:
        """The latest complete minute: events/min, avg signal, out-of-service share."""
        return self.get(ApiRequest("/v1/summary"))

    def pipeline(self, start: dt.datetime, end: dt.datetime) -> ApiResponse:
        """Pipeline health over [start, end)."""
        return self.get(ApiRequest("/v1/pipeline", tuple(_window(start, end))))

    def signal_strength(
        self,
        start: dt.datetime,
        end: dt.datetime,
        granularity: str,
        *,
        operators: Iterable[str] = (),
        network_types: Iterable[str] = (),
        by_network_type: bool = True,
    ) -> ApiResponse:
        """Signal strength per bucket × operator (× network type)."""
        params = [
            *_window(start, end),
            ("granularity", granularity),
            *_repeat("operator", operators),
            *_repeat("network_type", network_types),
            ("by_network_type", "true" if by_network_type else "false"),
        ]
        return self.get(ApiRequest("/v1/kpis/signal-strength", tuple(params)))

    def gps_precision(self, start: dt.datetime, end: dt.datetime, granularity: str) -> ApiResponse:
        """GPS precision per bucket × provider."""
        params = [*_window(start, end), ("granularity", granularity)]
        return self.get(ApiRequest("/v1/kpis/gps-precision", tuple(params)))

    def status_counts(
        self,
        start: dt.datetime,
        end: dt.datetime,
        granularity: str,
        *,
        postal_codes: Iterable[str] = (),
        top: int | None = None,
    ) -> ApiResponse:
        """Event counts per bucket × postal code × status (`top`: the worst N codes)."""
        params = [
            *_window(start, end),
            ("granularity", granularity),
            *_repeat("postal_code", postal_codes),
        ]
        if top is not None:
            params.append(("top", str(top)))
        return self.get(ApiRequest("/v1/kpis/status-counts", tuple(params)))

    def signal_quality(
        self,
        start: dt.datetime,
        end: dt.datetime,
        *,
        operators: Iterable[str] = (),
        network_types: Iterable[str] = (),
    ) -> ApiResponse:
        """Quality-band shares per operator × network type over the range."""
        params = [
            *_window(start, end),
            *_repeat("operator", operators),
            *_repeat("network_type", network_types),
        ]
        return self.get(ApiRequest("/v1/kpis/signal-quality", tuple(params)))

    def coverage(
        self,
        start: dt.datetime,
        end: dt.datetime,
        *,
        postal_codes: Iterable[str] = (),
        percentiles: Iterable[int] = (),
    ) -> ApiResponse:
        """Per postal code: centroid, events, devices, avg signal, out-of-service share, and the
        exact signal `percentiles` asked (nearest rank)."""
        params = [*_window(start, end), *_repeat("postal_code", postal_codes)]
        if asked := ",".join(str(p) for p in percentiles):
            params.append(("percentiles", asked))
        return self.get(ApiRequest("/v1/coverage", tuple(params)))

    def coverage_h3(self, start: dt.datetime, end: dt.datetime, *, res: int) -> ApiResponse:
        """Per H3 hexagon of resolution `res` (7 or 9): events, devices, average and median
        signal, the median event's band, out-of-service share; suppressed cells marked."""
        return self.get(ApiRequest("/v1/coverage/h3", (("res", str(res)), *_window(start, end))))

    def worst_cells(self, start: dt.datetime, end: dt.datetime, *, top: int) -> ApiResponse:
        """The `top` serving cells ranked worst first (out-of-service share, then p10 signal),
        each with its sample size, suppression and the H3 cell of its centroid."""
        return self.get(ApiRequest("/v1/cells/worst", (("top", str(top)), *_window(start, end))))

    def bands(self) -> ApiResponse:
        """The quality-band definition the API applies (thresholds per RAT, with sources)."""
        return self.get(ApiRequest("/v1/meta/bands"))

    # -- the alert evaluator's routes (#25) ---------------------------------------------------

    def alerts_active(self, *, postal_codes: Iterable[str] = ()) -> ApiResponse:
        """The evaluator's newest cycle: firing and pending alerts, its age and staleness
        (ApiError 503 `alerts_not_evaluated` when no cycle was ever committed)."""
        params = tuple(_repeat("postal_code", postal_codes))
        return self.get(ApiRequest("/v1/alerts/active", params))

    def alerts_history(
        self, start: dt.datetime, end: dt.datetime, *, postal_codes: Iterable[str] = ()
    ) -> ApiResponse:
        """The transitions the evaluator recorded in [start, end) (at most 24 h)."""
        params = [*_window(start, end), *_repeat("postal_code", postal_codes)]
        return self.get(ApiRequest("/v1/alerts/history", tuple(params)))

    def alert_rules(self) -> ApiResponse:
        """The evaluator's rule definitions, with their sources."""
        return self.get(ApiRequest("/v1/alerts/rules"))
