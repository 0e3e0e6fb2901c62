"""Validation, auth, rate limits, caching, stale-on-error and engine failures over HTTP."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from signal_api.adapters.duckdb_engine import DuckDBEngine
from signal_api.app import create_app
from signal_api.core.auth import hash_key
from signal_api.core.errors import EngineError, EngineTimeoutError, EngineUnavailableError
from signal_api.core.queries import Query
from signal_api.settings import ApiSettings

Iso = Callable[[dt.datetime], str]
RANGE = {"from": "2026-11-22T23:00:00Z", "to": "2026-11-23T00:30:00Z"}


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class SwitchableEngine:
    """The real DuckDBEngine, counting calls; can be switched to fail with a given error."""

    name = "switchable"

    def __init__(self, inner: DuckDBEngine) -> None:
        self.inner = inner
        self.calls = 0
        self.failure: EngineError | None = None
        self.gate: threading.Event | None = None

    def run(self, query: Query) -> list[dict[str, Any]]:
        self.calls += 1
        if self.gate is not None:
            self.gate.wait(10)
        if self.failure is not None:
            raise self.failure
        return self.inner.run(query)

    def close(self) -> None:
        pass


def _served(body: dict[str, Any]) -> dict[str, bool]:
    """How an answer was served (its meta's stale and cached flags)."""
    return {k: body["meta"][k] for k in ("stale", "cached")}


def _error(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}
    return body["error"]


@pytest.mark.parametrize(
    ("params", "parameter", "allowed"),
    [
        ({"granularity": "2m"}, "granularity", ["1m", "5m", "15m", "1h", "1d"]),
        ({"network_type": "6G"}, "network_type", ["2G", "3G", "4G", "5G"]),
        ({"from": "yesterday"}, "from", None),
        ({"to": "2026-13-01T00:00:00Z"}, "to", None),
        ({"by_network_type": "maybe"}, "by_network_type", None),
    ],
)
def test_invalid_parameters_are_422_naming_them(
    client: TestClient, params: dict[str, str], parameter: str, allowed: list[str] | None
) -> None:
    response = client.get("/v1/kpis/signal-strength", params={**RANGE, **params})
    assert response.status_code == 422
    error = _error(response)
    assert error["parameter"] == parameter
    assert f"'{parameter}'" in error["message"]
    if allowed:
        assert error["allowed"] == allowed
        assert ", ".join(allowed) in error["message"]


@pytest.mark.parametrize(
    ("path", "params", "parameter"),
    [
        ("/v1/kpis/gps-precision", {"provider": "glonass"}, "provider"),
        ("/v1/kpis/status-counts", {"status": "BROKEN"}, "status"),
        ("/v1/kpis/status-counts", {"top": "0"}, "top"),
        ("/v1/coverage", {"postal_code": "x" * 17}, "postal_code"),
        ("/v1/summary", {"at": "2100-01-01T00:00:00Z"}, "at"),
    ],
)
def test_other_routes_validate(
    client: TestClient, path: str, params: dict[str, str], parameter: str
) -> None:
    response = client.get(path, params=params)
    assert response.status_code == 422, response.text
    assert _error(response)["parameter"] == parameter


@pytest.mark.parametrize(
    ("granularity", "hours", "limit"),
    [("1m", 49, "48"), ("5m", 24 * 7 + 1, "168"), ("1h", 24 * 93, "2208")],
)
def test_range_too_large_for_granularity(
    client: TestClient, iso: Iso, granularity: str, hours: int, limit: str
) -> None:
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    response = client.get(
        "/v1/kpis/signal-strength",
        params={
            "from": iso(start),
            "to": iso(start + dt.timedelta(hours=hours)),
            "granularity": granularity,
        },
    )
    assert response.status_code == 422
    error = _error(response)
    assert f"limit for granularity {granularity} is {limit} h" in error["message"]
    ok = client.get(
        "/v1/kpis/signal-strength",
        params={
            "from": iso(start),
            "to": iso(start + dt.timedelta(hours=int(limit))),
            "granularity": granularity,
        },
    )
    assert ok.status_code == 200


def test_from_after_to_and_too_many_values(client: TestClient) -> None:
    response = client.get(
        "/v1/coverage", params={"from": "2026-11-23T01:00:00Z", "to": "2026-11-23T00:00:00Z"}
    )
    assert response.status_code == 422
    assert _error(response)["parameter"] == "from"
    many = [("postal_code", str(1000 + i)) for i in range(51)]
    response = client.get("/v1/coverage", params=many)
    assert response.status_code == 422
    assert "at most 50" in _error(response)["message"]


def test_auth_keys_are_checked(make_settings: Callable[..., ApiSettings], engine: Any) -> None:
    settings = make_settings(
        auth_enabled=True, api_keys_sha256=[f"dashboard:{hash_key('s3cret')}", hash_key("other")]
    )
    with TestClient(create_app(settings, engine)) as c:
        missing = c.get("/v1/coverage", params=RANGE)
        assert missing.status_code == 401
        assert _error(missing)["code"] == "missing_api_key"
        wrong = c.get("/v1/coverage", params=RANGE, headers={"X-API-Key": "guess"})
        assert wrong.status_code == 403
        assert _error(wrong)["code"] == "unknown_api_key"
        for key in ("s3cret", "other"):
            assert (
                c.get("/v1/coverage", params=RANGE, headers={"X-API-Key": key}).status_code == 200
            )
        # ops endpoints stay open for the load balancer and Prometheus
        for path in ("/healthz", "/readyz", "/metrics", "/docs", "/openapi.json"):
            assert c.get(path).status_code == 200, path


def test_rate_limit_per_key_with_retry_after(
    make_settings: Callable[..., ApiSettings], engine: Any
) -> None:
    clock = FakeClock()
    settings = make_settings(
        auth_enabled=True,
        api_keys_sha256=[f"a:{hash_key('key-a')}", f"b:{hash_key('key-b')}"],
        rate_limit_per_minute=30,
        rate_limit_burst=3,
    )
    with TestClient(create_app(settings, engine, monotonic=clock)) as c:

        def call(key: str) -> httpx.Response:
            return c.get("/v1/coverage", params=RANGE, headers={"X-API-Key": key})

        assert [call("key-a").status_code for _ in range(3)] == [200, 200, 200]
        limited = call("key-a")
        assert limited.status_code == 429
        assert limited.headers["Retry-After"] == "2"  # 30/min: one token every 2 s
        assert _error(limited)["code"] == "rate_limited"
        assert call("key-b").status_code == 200  # other keys keep their own budget
        clock.now += 2.0
        assert call("key-a").status_code == 200
        assert call("key-a").status_code == 429


def test_cache_ttl_and_stale_on_error(
    make_settings: Callable[..., ApiSettings], engine: DuckDBEngine
) -> None:
    clock = FakeClock()
    switchable = SwitchableEngine(engine)
    with TestClient(create_app(make_settings(cache_ttl_s=10), switchable, monotonic=clock)) as c:
        first = c.get("/v1/coverage", params=RANGE).json()
        assert _served(first) == {"stale": False, "cached": False}
        calls = switchable.calls
        second = c.get("/v1/coverage", params=RANGE).json()
        assert second["meta"] == {**first["meta"], "cached": True}  # its own meta, kept
        assert second["rows"] == first["rows"]
        assert switchable.calls == calls
        clock.now += 11
        switchable.failure = EngineUnavailableError("lake down")
        stale = c.get("/v1/coverage", params=RANGE)
        assert stale.status_code == 200
        assert stale.json()["meta"] == {**first["meta"], "stale": True}
        assert stale.json()["rows"] == first["rows"]
        # nothing cached for these parameters: the failure is reported, as JSON
        other = c.get("/v1/coverage", params={**RANGE, "postal_code": "1000"})
        assert other.status_code == 503
        assert _error(other)["code"] == "engine_unavailable"
        switchable.failure = EngineTimeoutError("too slow")
        timeout = c.get("/v1/coverage", params={**RANGE, "postal_code": "2000"})
        assert timeout.status_code == 504
        assert _error(timeout)["code"] == "engine_timeout"
        ready = c.get("/readyz")
        assert ready.status_code == 504
        switchable.failure = None
        assert c.get("/readyz").status_code == 200
        metrics = c.get("/metrics").text
        assert 'signal_api_cache_total{outcome="stale"} 1.0' in metrics
        assert 'signal_api_requests_total{route="/v1/coverage",status="503"} 1.0' in metrics


def test_stale_fallback_is_bounded_in_age(
    make_settings: Callable[..., ApiSettings], engine: DuckDBEngine
) -> None:
    clock = FakeClock()
    switchable = SwitchableEngine(engine)
    settings = make_settings(cache_ttl_s=10, stale_max_age_s=60)
    with TestClient(create_app(settings, switchable, monotonic=clock)) as c:
        assert c.get("/v1/coverage", params=RANGE).status_code == 200
        switchable.failure = EngineUnavailableError("lake down")
        clock.now += 59
        stale = c.get("/v1/coverage", params=RANGE)
        assert _served(stale.json()) == {"stale": True, "cached": False}
        clock.now += 1  # the answer is 60 s old: too old to stand in for a fresh one
        too_old = c.get("/v1/coverage", params=RANGE)
        assert too_old.status_code == 503
        assert _error(too_old)["code"] == "engine_unavailable"


def test_single_flight_over_http(
    make_settings: Callable[..., ApiSettings], engine: DuckDBEngine
) -> None:
    switchable = SwitchableEngine(engine)
    switchable.gate = threading.Event()
    app = create_app(make_settings(cache_ttl_s=60), switchable)

    async def scenario() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as c:
            requests = [
                asyncio.ensure_future(c.get("/v1/kpis/signal-quality", params=RANGE))
                for _ in range(8)
            ]
            while switchable.calls == 0:  # the first request reached the engine
                await asyncio.sleep(0.01)
            for _ in range(50):  # let the other seven reach the cache
                await asyncio.sleep(0)
            switchable.gate.set()
            return await asyncio.gather(*requests)

    responses = asyncio.run(scenario())
    assert switchable.calls == 2  # one computation: the lake's state, then the query
    bodies = [r.json() for r in responses]
    assert all(r.status_code == 200 for r in responses)
    assert all(b["rows"] == bodies[0]["rows"] for b in bodies)
    assert sum(b["meta"]["cached"] for b in bodies) == 7


def test_missing_lake_is_503(make_settings: Callable[..., ApiSettings], tmp_path: Any) -> None:
    missing = DuckDBEngine((tmp_path / "nowhere").as_uri())
    with TestClient(create_app(make_settings(), missing)) as c:
        response = c.get("/v1/coverage", params=RANGE)
        assert response.status_code == 503
        assert _error(response)["code"] == "engine_unavailable"
        assert c.get("/readyz").status_code == 503
        assert c.get("/healthz").status_code == 200
    missing.close()


def test_empty_lake_answers_with_no_rows(
    make_settings: Callable[..., ApiSettings], tmp_path: Any
) -> None:
    empty = DuckDBEngine(tmp_path.as_uri())
    with TestClient(create_app(make_settings(), empty)) as c:
        assert c.get("/v1/kpis/signal-strength", params=RANGE).json()["rows"] == []
        summary = c.get("/v1/summary").json()
        assert summary["window_start"] is None
        assert summary["events_per_min"] == 0
        assert c.get("/v1/pipeline").json()["batches"] == 0
    empty.close()


def test_cors_and_docs(make_settings: Callable[..., ApiSettings], engine: Any) -> None:
    settings = make_settings(cors_origins=["https://dash.example"])
    with TestClient(create_app(settings, engine)) as c:
        response = c.get("/v1/coverage", params=RANGE, headers={"Origin": "https://dash.example"})
        assert response.headers["access-control-allow-origin"] == "https://dash.example"
        other = c.get("/v1/coverage", params=RANGE, headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers
        schema = c.get("/openapi.json").json()
        for path in (
            "/v1/kpis/signal-strength",
            "/v1/kpis/gps-precision",
            "/v1/kpis/status-counts",
            "/v1/kpis/signal-quality",
            "/v1/coverage",
            "/v1/alerts",
            "/v1/summary",
            "/v1/pipeline",
            "/healthz",
            "/readyz",
            "/metrics",
        ):
            operation = schema["paths"][path]["get"]
            assert operation["description"] or operation["summary"], path
        assert "X-API-Key" in str(schema["components"]["securitySchemes"])


def test_readiness_costs_at_most_one_query_per_interval(
    make_settings: Callable[..., ApiSettings], engine: DuckDBEngine
) -> None:
    clock = FakeClock()
    switchable = SwitchableEngine(engine)
    settings = make_settings(ready_cache_s=30)
    with TestClient(create_app(settings, switchable, monotonic=clock)) as c:
        answers = [c.get("/readyz") for _ in range(20)]
        assert all(a.status_code == 200 for a in answers)
        assert switchable.calls == 1  # one ping, then the success is trusted
        assert [a.json()["checked"] for a in answers[:2]] == ["now", "cached"]
        clock.now += 31
        assert c.get("/readyz").json()["checked"] == "now"
        assert switchable.calls == 2
        assert c.get("/v1/coverage", params=RANGE).status_code == 200  # a success refreshes it
        clock.now += 20
        assert c.get("/readyz").json()["checked"] == "cached"
        switchable.failure = EngineUnavailableError("lake down")
        assert c.get("/v1/coverage", params={**RANGE, "postal_code": "9"}).status_code == 503
        assert c.get("/readyz").status_code == 503  # a failure withdraws the proof at once
        switchable.failure = None
        assert c.get("/readyz").json()["checked"] == "now"
