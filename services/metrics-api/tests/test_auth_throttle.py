"""Failed authentication throttled per client address (429 + Retry-After), valid keys never;
X-Forwarded-For trusted only as far as `trusted_proxy_hops` says (each trusted proxy appends the
address it saw, as an ALB does in its default `append` mode: AWS, "HTTP headers and Application
Load Balancers",
https://docs.aws.amazon.com/elasticloadbalancing/latest/application/x-forwarded-headers.html).
The same rule, served by uvicorn with the setting from the environment: test_served_bounds.py."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.testclient import TestClient

from signal_api.adapters.duckdb_engine import DuckDBEngine
from signal_api.app import create_app
from signal_api.core.auth import hash_key
from signal_api.settings import ApiSettings

RANGE = {"from": "2026-11-22T23:00:00Z", "to": "2026-11-23T00:30:00Z"}


class Clock:
    now = 1000.0

    def __call__(self) -> float:
        return self.now


def _app(
    make_settings: Callable[..., ApiSettings], engine: DuckDBEngine, clock: Clock, **kw: Any
) -> FastAPI:
    settings = make_settings(
        auth_enabled=True,
        api_keys_sha256=[f"dash:{hash_key('good')}"],
        auth_failures_per_minute=6,  # one every 10 s
        auth_failure_burst=3,
        **kw,
    )
    return create_app(settings, engine, monotonic=clock)


def _get(c: TestClient, key: str | None, forwarded: str | None = None) -> httpx.Response:
    headers = {} if key is None else {"X-API-Key": key}
    if forwarded is not None:
        headers["X-Forwarded-For"] = forwarded
    return c.get("/v1/coverage", params=RANGE, headers=headers)


def test_failures_from_one_address_get_429_and_valid_keys_never_do(
    make_settings: Callable[..., ApiSettings], engine: DuckDBEngine
) -> None:
    clock = Clock()
    with TestClient(_app(make_settings, engine, clock)) as c:
        statuses = [_get(c, "guess").status_code for _ in range(2)] + [_get(c, None).status_code]
        assert statuses == [403, 403, 401]  # a missing key is a failure too
        limited = _get(c, "guess")
        assert limited.status_code == 429
        assert limited.headers["Retry-After"] == "10"
        assert limited.json()["error"]["code"] == "auth_rate_limited"
        assert _get(c, None).status_code == 429
        # the same address with a valid key: served, and it does not refill the failures
        assert [_get(c, "good").status_code for _ in range(5)] == [200] * 5
        assert _get(c, "guess").status_code == 429
        # X-Forwarded-For is not trusted by default: forging it does not reset the budget
        assert _get(c, "guess", forwarded="192.0.2.99").status_code == 429
        clock.now += 10  # one failure refilled
        assert [_get(c, "guess").status_code for _ in range(2)] == [403, 429]


def test_behind_trusted_proxies_the_address_is_the_one_they_appended(
    make_settings: Callable[..., ApiSettings], engine: DuckDBEngine
) -> None:
    with TestClient(_app(make_settings, engine, Clock(), trusted_proxy_hops=1)) as c:
        # the caller forges the left entries; the proxy appends the address it saw
        forged = [_get(c, "guess", f"10.0.0.{i}, 203.0.113.7").status_code for i in range(4)]
        assert forged == [403, 403, 403, 429]
        assert _get(c, "guess", "198.51.100.4").status_code == 403  # its own budget
        assert _get(c, "good", "203.0.113.7").status_code == 200
    with TestClient(_app(make_settings, engine, Clock(), trusted_proxy_hops=2)) as c:
        # two proxies: the client is the second entry from the right
        assert [
            _get(c, "guess", f"10.0.0.{i}, 203.0.113.7, 10.1.1.1").status_code for i in range(4)
        ] == [403, 403, 403, 429]
        # fewer entries than proxies: the outermost one written, not the connection's peer
        assert _get(c, "guess", "198.51.100.4").status_code == 403


def test_without_auth_the_rate_limit_keys_on_the_same_address(
    make_settings: Callable[..., ApiSettings], engine: DuckDBEngine
) -> None:
    settings = make_settings(rate_limit_burst=1, rate_limit_per_minute=1, trusted_proxy_hops=1)
    with TestClient(create_app(settings, engine, monotonic=Clock())) as c:
        assert _get(c, None, "203.0.113.7").status_code == 200
        assert _get(c, None, "10.0.0.1, 203.0.113.7").status_code == 429
        assert _get(c, None, "203.0.113.8").status_code == 200
