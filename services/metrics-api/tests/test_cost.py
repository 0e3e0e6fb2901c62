"""Cost per caller: the response cap (422 before the whole answer is fetched), row building and
encoding off the event loop, a per-key cap on concurrent computations, and expensive answers
charged to the rate limit by the rows they read."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from signal_api import rendering
from signal_api.adapters.duckdb_engine import DuckDBEngine
from signal_api.app import create_app
from signal_api.core import service
from signal_api.core.auth import hash_key
from signal_api.core.queries import Query
from signal_api.settings import ApiSettings

RANGE = {"from": "2026-11-22T23:00:00Z", "to": "2026-11-23T00:30:00Z"}
GATED = "gated"  # a filter value whose queries wait for the test's gate


class RecordingEngine:
    """The real DuckDBEngine; records each query's text and the rows it returned, and holds
    queries that filter on GATED until the gate opens."""

    name = "recording"

    def __init__(self, inner: DuckDBEngine) -> None:
        self.inner = inner
        self.seen: list[tuple[str, int]] = []
        self.gate = threading.Event()
        self.gate.set()
        self.gated = 0
        self._lock = threading.Lock()

    def _hold(self, query: Query) -> None:
        if GATED in query.params:
            with self._lock:
                self.gated += 1
            self.gate.wait(30)

    def run(self, query: Query) -> list[dict[str, Any]]:
        self._hold(query)
        rows = self.inner.run(query)
        self.seen.append((query.sql, len(rows)))
        return rows

    def run_columns(self, query: Query) -> dict[str, list[Any]]:
        self._hold(query)
        columns = self.inner.run_columns(query)
        self.seen.append((query.sql, len(next(iter(columns.values()), []))))
        return columns

    def close(self) -> None:
        pass


def _on_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def test_an_answer_over_the_cap_is_a_422_refused_before_it_is_fetched(
    make_settings: Callable[..., ApiSettings], engine: DuckDBEngine
) -> None:
    recording = RecordingEngine(engine)
    with TestClient(create_app(make_settings(max_response_rows=10), recording)) as c:
        response = c.get("/v1/kpis/signal-strength", params={**RANGE, "granularity": "1m"})
        assert response.status_code == 422
        error = response.json()["error"]
        assert error["code"] == "result_too_large"
        for advice in ("more than 10 rows", "coarser granularity", "shorter range", "filters"):
            assert advice in error["message"]
        sql, fetched = recording.seen[-1]
        assert sql.endswith("LIMIT 11")  # the engine stops at cap + 1 rows
        assert fetched == 11
        # narrowed as the message says, the same question is answered
        coarse = c.get(
            "/v1/kpis/signal-strength",
            params={**RANGE, "granularity": "1d", "operator": "Orange", "by_network_type": "false"},
        )
        assert coarse.status_code == 200, coarse.text
        assert len(coarse.json()["rows"]) <= 10


def test_rows_are_shaped_and_encoded_in_worker_threads(
    make_settings: Callable[..., ApiSettings], engine: DuckDBEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    shaped: list[bool] = []
    encoded: list[bool] = []
    # (getattr: before rows were shaped in threads these functions did not exist)
    status_rows = getattr(service, "_status_rows", None)
    encode = getattr(rendering.Rendered, "encode", None)
    assert status_rows is not None
    assert encode is not None

    def recording_status_rows(rows: service.Rows) -> service.EncodedJson:
        shaped.append(_on_event_loop())
        return status_rows(rows)

    def recording_encode(payload: dict[str, Any], *meta: Any) -> rendering.Rendered:
        encoded.append(_on_event_loop())
        return encode(payload, *meta)

    monkeypatch.setattr(service, "_status_rows", recording_status_rows, raising=False)
    monkeypatch.setattr(rendering.Rendered, "encode", recording_encode, raising=False)
    with TestClient(create_app(make_settings(), engine)) as c:
        response = c.get("/v1/kpis/status-counts", params=RANGE)
        assert response.status_code == 200
        assert len(response.json()["rows"]) > 100
    assert shaped == [False]  # ran once, and not on the event loop
    assert encoded == [False]


def test_a_key_at_its_concurrency_cap_waits_while_another_key_is_served(
    make_settings: Callable[..., ApiSettings], engine: DuckDBEngine
) -> None:
    recording = RecordingEngine(engine)
    recording.gate.clear()
    settings = make_settings(
        auth_enabled=True,
        api_keys_sha256=[f"a:{hash_key('key-a')}", f"b:{hash_key('key-b')}"],
        max_concurrent_per_key=2,
    )
    app = create_app(settings, recording)

    async def scenario() -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as c:
            slow = [
                asyncio.ensure_future(
                    c.get(
                        "/v1/coverage",
                        params={**RANGE, "postal_code": [GATED, str(i)]},
                        headers={"X-API-Key": "key-a"},
                    )
                )
                for i in range(3)  # three distinct computations of key a
            ]
            while recording.gated < 2:
                await asyncio.sleep(0.01)
            other = await c.get("/v1/coverage", params=RANGE, headers={"X-API-Key": "key-b"})
            assert other.status_code == 200  # key b is served while key a's slots are taken
            for _ in range(50):
                await asyncio.sleep(0.001)
            assert recording.gated == 2  # key a's third computation waits for a slot
            assert not any(task.done() for task in slow)
            recording.gate.set()
            answers = await asyncio.gather(*slow)
            assert [a.status_code for a in answers] == [200, 200, 200]
            assert recording.gated == 3

    asyncio.run(scenario())


def test_a_computed_answer_is_charged_by_the_rows_it_read(
    make_settings: Callable[..., ApiSettings], engine: DuckDBEngine
) -> None:
    class Clock:
        now = 1000.0

        def __call__(self) -> float:
            return self.now

    clock = Clock()
    settings = make_settings(
        auth_enabled=True,
        api_keys_sha256=[f"a:{hash_key('key-a')}"],
        rate_limit_per_minute=60,  # one token a second
        rate_limit_burst=20,
        rows_per_token=40,
        cache_ttl_s=60,
    )
    with TestClient(create_app(settings, engine, monotonic=clock)) as c:

        def call(granularity: str) -> httpx.Response:
            return c.get(
                "/v1/kpis/signal-strength",
                params={**RANGE, "granularity": granularity},
                headers={"X-API-Key": "key-a"},
            )

        expensive = call("1m")
        rows = len(expensive.json()["rows"])
        assert rows >= 800  # 90 minutes of operator/network pairs
        # 20 tokens - 1 for the request - rows // 40 for the work (a debt floored at the burst)
        tokens = max(-20, 20 - 1 - rows // 40)
        assert tokens < 1
        wait = 1 - tokens  # seconds to get back to one token, at one a second
        limited = call("1m")
        assert limited.status_code == 429
        assert limited.headers["Retry-After"] == str(wait)
        clock.now += wait
        assert call("1m").json()["meta"]["cached"]  # a cached answer costs one token, no more
        clock.now += 1
        assert call("1m").status_code == 200
