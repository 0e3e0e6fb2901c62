"""The contract says what the server enforces, and bounds are used at the precision of the SQL.

The OpenAPI document is the oracle for parameters: a value the document's own schema accepts
(checked with `jsonschema`, formats included) is accepted by the server, and one it refuses is a
422 naming the parameter. Results of sub-millisecond bounds are checked against the same query
with the bounds written at millisecond precision, and against pandas over the raw events.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any

import jsonschema
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from signal_api.adapters.duckdb_engine import DuckDBEngine
from signal_api.app import create_app
from signal_api.core import queries
from signal_api.core.params import Granularity, time_range
from signal_api.settings import ApiSettings

SIGNAL = "/v1/kpis/signal-strength"


def _parameter(document: dict[str, Any], path: str, name: str) -> dict[str, Any]:
    (parameter,) = [p for p in document["paths"][path]["get"]["parameters"] if p["name"] == name]
    return parameter


def _document_accepts(document: dict[str, Any], path: str, name: str, values: list[str]) -> bool:
    """Whether the document's schema of parameter `name` accepts `values` (one or repeated)."""
    schema = _parameter(document, path, name)["schema"]
    instance: Any = values if schema.get("type") == "array" else values[0]
    validator = jsonschema.Draft202012Validator(
        {**schema, "components": document["components"]},
        format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER,
    )
    return validator.is_valid(instance)


@pytest.fixture(scope="module")
def document(client: TestClient) -> dict[str, Any]:
    body: dict[str, Any] = client.get("/openapi.json").json()
    return body


DATE_TIMES = [
    "2026-11-23T00:10:00Z",
    "2026-11-23t00:10:00z",
    "2026-11-23T01:10:00.123456789+01:00",
    "2026-11-22T23:10:00.5-01:00",
    "999999999",  # an epoch number, which pydantic read as 2001-09-09
    "1700000000.5",
    "2026-11-23",
    "2026-11-23T00:10:00",  # no offset
    "2026-11-23T00:10Z",
    "2026-11-23 00:10:00Z",
    "2026-02-30T00:00:00Z",
    "2026-11-23T24:00:00Z",
    "1999-12-31T23:00:00Z",
    "2100-01-01T00:00:00Z",
    "+2026-11-23T00:10:00Z",
    "now",
]


@pytest.mark.parametrize("text", DATE_TIMES)
@pytest.mark.parametrize(
    ("path", "name"), [(SIGNAL, "from"), ("/v1/pipeline", "to"), ("/v1/summary", "at")]
)
def test_a_date_time_is_accepted_exactly_when_the_contract_allows_it(
    client: TestClient, document: dict[str, Any], path: str, name: str, text: str
) -> None:
    response = client.get(path, params={name: text})
    if _document_accepts(document, path, name, [text]):
        assert response.status_code == 200, response.text
    else:
        assert response.status_code == 422, response.text
        assert response.json()["error"]["parameter"] == name


FILTER_VALUES = [
    ["Orange"],
    ["Base O'Neil", "née"],
    ["a" * 64],
    ["a" * 65],
    [""],
    ["x\ny"],
    ["\x7f"],
    ["\u200b"],
    ["Orange"] * 50,
    ["Orange"] * 51,  # repeats count: the document's maxItems counts what is sent
    [f"op{i}" for i in range(51)],
]


@pytest.mark.parametrize("values", FILTER_VALUES, ids=lambda v: f"{len(v)}x{v[0][:8]!r}")
@pytest.mark.parametrize(("path", "name"), [(SIGNAL, "operator"), ("/v1/coverage", "postal_code")])
def test_a_filter_is_accepted_exactly_when_the_contract_allows_it(
    client: TestClient, document: dict[str, Any], path: str, name: str, values: list[str]
) -> None:
    response = client.get(path, params=[(name, v) for v in values])
    if _document_accepts(document, path, name, values):
        assert response.status_code == 200, response.text
    else:
        assert response.status_code == 422, response.text
        assert response.json()["error"]["parameter"] == name


def test_the_document_declares_formats_lengths_counts_and_ranges(document: dict[str, Any]) -> None:
    for path, item in document["paths"].items():
        for parameter in item["get"].get("parameters", []):
            schema = parameter["schema"]
            assert "anyOf" not in schema, (path, parameter["name"])  # a query sends no null
            if parameter["name"] in ("from", "to", "at"):
                assert schema["format"] == "date-time", path
                assert schema["pattern"], path
            elif schema.get("type") == "array":
                assert schema["maxItems"] == 50, (path, parameter["name"])
                items = schema["items"]
                assert "enum" in items or {"minLength", "maxLength", "pattern"} <= set(items)
            elif parameter["name"] == "top":
                assert (schema["minimum"], schema["maximum"]) == (1, 1000)
            elif parameter["name"] == "granularity":
                assert parameter["x-range-limits-hours"]["1m"] == 48
    assert _parameter(document, "/v1/coverage", "postal_code")["schema"]["items"]["maxLength"] == 16
    assert document["paths"]["/v1/pipeline"]["get"]["x-range-limit-hours"] == 744
    assert "result_too_large" in document["paths"][SIGNAL]["get"]["responses"]["422"]["description"]


@pytest.fixture(scope="module")
def narrow_client(
    make_settings: Callable[..., ApiSettings], engine: DuckDBEngine
) -> Iterator[TestClient]:
    """An app whose settings differ from the defaults: 3 filter values, 1m ranges of 2 h."""
    settings = make_settings(max_filter_values=3, range_limits_hours={"1m": 2})
    with TestClient(create_app(settings, engine)) as test_client:
        yield test_client


def test_each_app_documents_the_limits_of_its_own_settings(narrow_client: TestClient) -> None:
    document = narrow_client.get("/openapi.json").json()
    assert _parameter(document, SIGNAL, "operator")["schema"]["maxItems"] == 3
    granularity = _parameter(document, SIGNAL, "granularity")
    assert granularity["x-range-limits-hours"]["1m"] == 2
    assert "1m 2 h" in granularity["description"]
    ops = [("operator", "Orange"), ("operator", "Proximus"), ("operator", "Base O'Neil")]
    assert narrow_client.get(SIGNAL, params=ops).status_code == 200
    refused = narrow_client.get(SIGNAL, params=[*ops, ("operator", "Orange")])
    assert refused.status_code == 422
    assert refused.json()["error"]["parameter"] == "operator"
    window = {"from": "2026-11-23T00:00:00Z", "to": "2026-11-23T02:00:00.001Z"}
    assert narrow_client.get(SIGNAL, params=window).status_code == 422
    assert (
        narrow_client.get(SIGNAL, params={**window, "to": "2026-11-23T02:00:00Z"}).status_code
        == 200
    )


@pytest.mark.parametrize(
    ("path", "params"),
    [
        (SIGNAL, [("granularity", "1m"), ("granularity", "1h")]),
        (SIGNAL, [("from", "2026-11-23T00:00:00Z"), ("from", "2026-11-23T00:30:00Z")]),
        (SIGNAL, [("by_network_type", "true"), ("by_network_type", "false")]),
        ("/v1/kpis/status-counts", [("top", "1"), ("top", "2")]),
        ("/v1/summary", [("at", "2026-11-23T00:00:00Z"), ("at", "2026-11-23T00:00:00Z")]),
        ("/v1/pipeline", [("to", "2026-11-23T01:00:00Z"), ("to", "2026-11-23T01:00:00Z")]),
    ],
)
def test_a_single_value_parameter_given_twice_is_refused(
    client: TestClient, path: str, params: list[tuple[str, str]]
) -> None:
    response = client.get(path, params=params)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["parameter"] == params[0][0]
    assert "one value" in error["message"]


def test_a_repeatable_filter_still_takes_several_values(client: TestClient) -> None:
    params = [("operator", "Orange"), ("operator", "Proximus"), ("granularity", "1h")]
    params += [("from", "2026-11-22T22:00:00Z"), ("to", "2026-11-23T02:00:00Z")]
    body = client.get(SIGNAL, params=params).json()
    assert {row["operator"] for row in body["rows"]} == {"Orange", "Proximus"}


def _instant(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def _instants(body: dict[str, Any]) -> tuple[dt.datetime, dt.datetime]:
    """(from, to) of a response or request, as instants."""
    return _instant(body["from"]), _instant(body["to"])


def _minute_counts(events: pd.DataFrame, start: str, end: str) -> dict[str, int]:
    """Events per 1-minute window start in [start, end) (ISO text, millisecond precision)."""
    minute = events["event_time"].dt.floor("min")
    chosen = minute[(minute >= pd.Timestamp(start)) & (minute < pd.Timestamp(end))]
    return {t.isoformat().replace("+00:00", "Z"): int(n) for t, n in chosen.value_counts().items()}


def test_sub_millisecond_bounds_are_rounded_up_to_the_millisecond_the_sql_binds(
    client: TestClient, events: pd.DataFrame
) -> None:
    """`to=…00:23:00.000500Z` includes the 00:23 window start (00:23:00.000 < to); `from=…
    00:10:00.000500Z` excludes 00:10 — as the same request at millisecond precision does."""
    sent = {"from": "2026-11-23T00:10:00.000500Z", "to": "2026-11-23T00:23:00.000500Z"}
    used = {"from": "2026-11-23T00:10:00.001Z", "to": "2026-11-23T00:23:00.001Z"}
    body = client.get(SIGNAL, params={**sent, "by_network_type": "false"}).json()
    oracle = client.get(SIGNAL, params={**used, "by_network_type": "false"}).json()
    assert _instants(body) == _instants(used)
    assert body["rows"] == oracle["rows"]
    counts: dict[str, int] = {}
    for row in body["rows"]:
        counts[row["bucket_start"]] = counts.get(row["bucket_start"], 0) + row["event_count"]
    expected = _minute_counts(events, "2026-11-23T00:11:00Z", "2026-11-23T00:24:00Z")
    assert counts == expected
    assert "2026-11-23T00:23:00Z" in counts
    assert "2026-11-23T00:10:00Z" not in counts


@pytest.mark.parametrize(
    ("path", "extra"),
    [
        ("/v1/kpis/status-counts", {"granularity": "5m"}),
        ("/v1/kpis/gps-precision", {}),
        ("/v1/kpis/signal-quality", {}),
        ("/v1/coverage", {}),
        ("/v1/pipeline", {}),
    ],
)
def test_every_range_endpoint_echoes_and_uses_the_rounded_bounds(
    client: TestClient, path: str, extra: dict[str, str]
) -> None:
    sent = {"from": "2026-11-22T23:00:00.0000001+00:00", "to": "2026-11-23T00:05:00.0004Z"}
    used = {"from": "2026-11-22T23:00:00.001Z", "to": "2026-11-23T00:05:00.001Z"}
    body = client.get(path, params={**sent, **extra}).json()
    oracle = client.get(path, params={**used, **extra}).json()
    assert _instants(body) == _instants(used)
    if path == "/v1/pipeline":  # freshness is measured from now; the sums are the range's
        body = {k: v for k, v in body.items() if not k.endswith("freshness_s") and k != "as_of"}
        oracle = {k: v for k, v in oracle.items() if not k.endswith("freshness_s") and k != "as_of"}
    assert body == oracle


def test_summary_echoes_the_instant_it_used(client: TestClient) -> None:
    body = client.get("/v1/summary", params={"at": "2026-11-23T01:20:30.0000005Z"}).json()
    oracle = client.get("/v1/summary", params={"at": "2026-11-23T01:20:30.001Z"}).json()
    assert _instant(body["as_of"]) == dt.datetime(2026, 11, 23, 1, 20, 30, 1000, tzinfo=dt.UTC)
    assert body == oracle


def test_bounds_within_one_millisecond_are_an_empty_range(client: TestClient) -> None:
    params = {"from": "2026-11-23T00:10:00.0001Z", "to": "2026-11-23T00:10:00.0009Z"}
    response = client.get(SIGNAL, params=params)
    assert response.status_code == 422
    assert response.json()["error"]["parameter"] == "from"


@pytest.mark.parametrize(
    "end",
    [
        dt.datetime(2026, 11, 23, 0, 23, 0, 500, tzinfo=dt.UTC),
        dt.datetime(2026, 11, 23, 0, 23, 59, 999999, tzinfo=dt.UTC),
        dt.datetime(2026, 11, 23, 0, 23, tzinfo=dt.UTC),
    ],
)
def test_the_range_a_response_echoes_is_the_one_the_sql_binds(end: dt.datetime) -> None:
    """The timestamp text queries.py binds names the very instants the range holds (and the
    response echoes): nothing is lost to the SQL's millisecond precision."""
    window = time_range(end - dt.timedelta(minutes=30), end, now=end)
    query = queries.signal_strength(window, Granularity.M1)
    bound = [_instant(p) for p in query.params if isinstance(p, str) and " " in p]
    assert [b.replace(tzinfo=dt.UTC) for b in bound] == [window.start, window.end]
    assert window.end >= end
    assert window.end - end < dt.timedelta(milliseconds=1)
