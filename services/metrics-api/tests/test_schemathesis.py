"""Property-based run over the app's own OpenAPI document (in-process ASGI), with every check
schemathesis has: no 5xx, responses as documented, and the contract exactly as strict as the
server — a request the document allows is accepted (positive_data_acceptance) and one it
forbids is refused (negative_data_rejection, missing_required_header, ignored_auth).

Bounded: a fixed number of examples per operation, derandomized, over the session's small
fixture lake (the whole module takes seconds, not minutes).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import CHECKS, is_check_class, load_all_checks
from schemathesis.config import SchemathesisConfig

from signal_api.adapters.duckdb_engine import DuckDBEngine
from signal_api.app import create_app
from signal_api.core.auth import hash_key
from signal_api.settings import ApiSettings

KEY = "schemathesis-key"
MAX_EXAMPLES = 10
# Every check that judges one response ("--checks all"); the class-based ones are stateful
# (they need several linked operations this API does not have).
load_all_checks()
ALL_CHECKS = [check for check in CHECKS.get_all() if not is_check_class(check)]


def _instant(text: str) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(text.upper())
    except ValueError:
        return None


def keep_documented_range(_: Any, case: Any) -> Any:
    """Positive cases obey the range rules the document states in words and extensions, which
    JSON Schema cannot express between two parameters: `from` earlier than `to`, and no longer
    than `x-range-limits-hours[granularity]` / `x-range-limit-hours`. A pair that breaks them
    gets `to` one hour after `from`; negative cases are left as generated."""
    if not case.meta.generation.mode.is_positive:
        return case
    query = case.query or {}
    start, end = _instant(str(query.get("from", ""))), _instant(str(query.get("to", "")))
    if start is None or end is None:
        return case
    operation = case.operation.definition.raw
    hours = operation.get("x-range-limit-hours")
    for parameter in operation.get("parameters", []):
        if parameter.get("name") == "granularity":
            hours = parameter.get("x-range-limits-hours", {}).get(query.get("granularity", "1m"))
    if start < end and (hours is None or end - start <= dt.timedelta(hours=hours)):
        return case
    query["to"] = (start + dt.timedelta(hours=1)).isoformat()
    return case


@pytest.fixture(scope="module")
def api_schema(make_settings: Callable[..., ApiSettings], engine: DuckDBEngine) -> Any:
    """The app's own document, served in-process over the fixture lake, with a valid key."""
    app_settings = make_settings(
        auth_enabled=True,
        api_keys_sha256=[f"schemathesis:{hash_key(KEY)}"],
        # ignored_auth sends many wrong keys on purpose; do not throttle them here
        auth_failures_per_minute=1_000_000,
        auth_failure_burst=1_000_000,
    )
    config = SchemathesisConfig.from_dict(
        {
            "auth": {"openapi": {"APIKeyHeader": {"api_key": KEY}}},
            "generation": {"max-examples": MAX_EXAMPLES, "mode": "all"},
            # a single-value parameter sent twice must be refused, not read as its last value
            "phases": {"coverage": {"generate-duplicate-query-parameters": True}},
        }
    )
    loaded = schemathesis.openapi.from_asgi(
        "/openapi.json", create_app(app_settings, engine), config=config
    )
    loaded.hook("map_case")(keep_documented_range)
    return loaded


schema = schemathesis.pytest.from_fixture("api_schema")


def test_every_single_response_check_runs() -> None:
    names = {check.__name__ for check in ALL_CHECKS}
    assert {"positive_data_acceptance", "negative_data_rejection", "ignored_auth"} <= names


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_the_server_is_exactly_as_strict_as_its_contract(case: Any) -> None:
    response = case.call_and_validate(checks=ALL_CHECKS)
    if response.status_code == 422:
        error = response.json()["error"]
        assert error["parameter"]
        assert error["message"]
