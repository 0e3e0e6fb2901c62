"""The HTTP layer as a whole: the published contract, auth on every /v1 route, route labels."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from signal_api.adapters.duckdb_engine import DuckDBEngine
from signal_api.app import create_app
from signal_api.core.auth import hash_key
from signal_api.openapi import document, render
from signal_api.settings import ApiSettings

COMMITTED = Path(__file__).resolve().parents[1] / "openapi.json"
REFRESH = (
    "./pants run services/metrics-api/src/signal_api/openapi.py > services/metrics-api/openapi.json"
)


def test_the_openapi_document_is_the_committed_contract() -> None:
    committed = json.loads(COMMITTED.read_text("utf-8"))
    assert document() == committed, f"the API contract changed; review it and run: {REFRESH}"
    assert render() == COMMITTED.read_text("utf-8"), f"formatting differs; run: {REFRESH}"


def _v1_paths() -> list[str]:
    paths = sorted(p for p in document()["paths"] if p.startswith("/v1/"))
    # 4 KPI series, coverage, coverage/h3, cells/worst, alerts, summary, pipeline, meta/bands,
    # alerts/active|history|rules
    assert len(paths) == 14
    return paths


@pytest.mark.parametrize("path", _v1_paths())
def test_every_v1_route_requires_a_key_and_ops_routes_do_not(
    make_settings: Callable[..., ApiSettings], engine: DuckDBEngine, path: str
) -> None:
    settings = make_settings(auth_enabled=True, api_keys_sha256=[f"team:{hash_key('k')}"])
    with TestClient(create_app(settings, engine)) as client:
        missing = client.get(path)
        assert missing.status_code == 401
        assert missing.json()["error"]["code"] == "missing_api_key"
        assert client.get(path, headers={"X-API-Key": "wrong"}).status_code == 403
        assert client.get(path, headers={"X-API-Key": "k"}).status_code == 200
        assert client.get("/healthz").status_code == 200
        assert client.get("/metrics").status_code == 200


def test_requests_are_counted_per_route_and_unknown_paths_as_unmatched(
    client: TestClient,
) -> None:
    def count(route: str, status: str) -> float:
        for line in client.get("/metrics").text.splitlines():
            if line.startswith(f'signal_api_requests_total{{route="{route}",status="{status}"}}'):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    before = count("/v1/kpis/signal-strength", "200"), count("unmatched", "404")
    assert client.get("/v1/kpis/signal-strength").status_code == 200
    assert client.get("/v1/no-such-route").status_code == 404
    assert client.get("/v1/kpis/signal-strength/../../../etc").status_code == 404
    after = count("/v1/kpis/signal-strength", "200"), count("unmatched", "404")
    assert after == (before[0] + 1, before[1] + 2)
