"""Property-based run over the OpenAPI schema (in-process ASGI): no input yields a 5xx."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from signal_api.adapters.duckdb_engine import DuckDBEngine
from signal_api.app import create_app
from signal_api.settings import ApiSettings


@pytest.fixture(scope="module")
def api_schema(make_settings: Callable[..., ApiSettings], engine: DuckDBEngine) -> Any:
    """The app's schema, served in-process over the fixture lake."""
    app = create_app(make_settings(), engine)
    return schemathesis.openapi.from_asgi("/openapi.json", app)


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_no_server_errors(case: Any) -> None:
    response = case.call()
    assert response.status_code < 500, (case.path, case.query, response.text)
    if response.status_code == 422:
        error = response.json()["error"]
        assert error["parameter"]
        assert error["message"]
