"""The query parameters routes share, as annotated types (`from_: FromParam = None`), and what
the contract (OpenAPI) states about them: formats, patterns, lengths, item counts and ranges.

Each rule is declared once, in `core.params`, and both enforced and documented from there:
date-times are parsed with the pattern the document declares, filter values are checked
(`ApiContext.filters` → `params.filter_values`) against the pattern and lengths declared here,
and what depends on settings (values per filter, range per granularity) is written into each
app's own document by `with_settings` (the committed openapi.json holds the defaults').
"""

from __future__ import annotations

import copy
import datetime as dt
import enum
import types
import typing
from typing import Annotated, Any

from fastapi import FastAPI, Query, Request
from fastapi.routing import APIRoute
from pydantic import BeforeValidator, WithJsonSchema

from signal_api.core.errors import InvalidParameterError
from signal_api.core.params import (
    FILTER_VALUE_PATTERN,
    OPERATOR_MAX_LENGTH,
    POSTAL_CODE_MAX_LENGTH,
    QUERY_PRECISION,
    RFC3339_PATTERN,
    Granularity,
    parse_instant,
)
from signal_api.settings import ApiSettings
from signal_common.schema import NetworkType, Provider, Status

# The longest from..to range of an operation without a granularity, in hours (set by routes).
RANGE_LIMIT_EXTENSION = "x-range-limit-hours"
_PRECISION = f"{QUERY_PRECISION.total_seconds() * 1000:g} ms"


def _instant(value: object) -> object:
    """Query text → UTC datetime (RFC 3339 only: an epoch number or a bare date is refused)."""
    if isinstance(value, dt.datetime):
        return value
    if not isinstance(value, str):
        raise ValueError("must be an RFC 3339 date-time string")
    return parse_instant(value)


# Optional parameters are documented without `null`: a query string cannot send one.
_INSTANT = (
    BeforeValidator(_instant),
    WithJsonSchema({"type": "string", "format": "date-time", "pattern": RFC3339_PATTERN}),
)
_DATE_TIME_TEXT = (
    "RFC 3339 date-time with an offset (e.g. 2026-11-23T07:00:00Z), year 2000-2099; "
    f"rounded up to {_PRECISION}, the precision the queries bind"
)


def _filter(items: dict[str, Any]) -> WithJsonSchema:
    """A repeatable filter's schema; `maxItems` is the default setting until `with_settings`."""
    default: int = ApiSettings.model_fields["max_filter_values"].default
    return WithJsonSchema({"type": "array", "items": items, "maxItems": default})


def _text(max_length: int) -> dict[str, Any]:
    """Free-text filter values, as `params.filter_values` checks them."""
    return {
        "type": "string",
        "minLength": 1,
        "maxLength": max_length,
        "pattern": FILTER_VALUE_PATTERN,
    }


def _enum(values: type[enum.StrEnum]) -> dict[str, Any]:
    return {"type": "string", "enum": [v.value for v in values]}


FromParam = Annotated[
    dt.datetime | None,
    *_INSTANT,
    Query(
        alias="from",
        description=f"Range start, {_DATE_TIME_TEXT}. Must be earlier than `to` after rounding "
        "(default: one hour before `to`).",
    ),
]
ToParam = Annotated[
    dt.datetime | None,
    *_INSTANT,
    Query(
        description=f"Range end (exclusive), {_DATE_TIME_TEXT} (default: end of the current "
        "minute, or one hour after `from` floored to the minute)."
    ),
]
AtParam = Annotated[
    dt.datetime | None,
    *_INSTANT,
    Query(description=f"Evaluate as of this time, {_DATE_TIME_TEXT} (default: now)."),
]
_GRANULARITY_TEXT = "Bucket width: 1m, 5m, 15m, 1h or 1d."
GranularityParam = Annotated[Granularity, Query(description=_GRANULARITY_TEXT)]
OperatorParam = Annotated[
    list[str] | None,
    _filter(_text(OPERATOR_MAX_LENGTH)),
    Query(description="Operator (repeatable)."),
]
NetworkParam = Annotated[
    list[NetworkType] | None,
    _filter(_enum(NetworkType)),
    Query(description="Network type (repeatable)."),
]
PostalParam = Annotated[
    list[str] | None,
    _filter(_text(POSTAL_CODE_MAX_LENGTH)),
    Query(description="Postal code (repeatable)."),
]
ProviderParam = Annotated[
    list[Provider] | None,
    _filter(_enum(Provider)),
    Query(description="Location provider (repeatable)."),
]
StatusParam = Annotated[
    list[Status] | None, _filter(_enum(Status)), Query(description="Service status (repeatable).")
]


def _is_list(annotation: Any) -> bool:
    """Whether a parameter's annotation takes repeated values (`list[...]`, optionally `| None`)."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return any(_is_list(arg) for arg in typing.get_args(annotation))
    return typing.get_origin(annotation) is list


def _single_valued(route: APIRoute) -> set[str]:
    """The names of `route`'s query parameters that take one value."""
    return {
        field.alias
        for field in route.dependant.query_params
        if not _is_list(field.field_info.annotation)
    }


async def single_values(request: Request) -> None:
    """Refuses a single-value parameter given more than once (422), instead of silently using
    its last value. Async: a sync dependency costs a thread-pool hop per request."""
    keys = [key for key, _ in request.query_params.multi_items()]
    if len(keys) == len(set(keys)):
        return
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    single = _single_valued(route)
    for key in keys:
        if key in single and keys.count(key) > 1:
            raise InvalidParameterError(
                key, f"parameter '{key}' takes one value, got {keys.count(key)}"
            )


def with_settings(document: dict[str, Any], settings: ApiSettings) -> dict[str, Any]:
    """`document` stating the limits of `settings`: `maxItems` of every repeatable filter and
    the longest range per granularity (`x-range-limits-hours` and the description); optional
    parameters lose the `null` FastAPI gives them."""
    result = copy.deepcopy(document)
    limits = {g.value: settings.range_limits_hours[g.value] for g in Granularity}
    limits_text = ", ".join(f"{g} {hours} h" for g, hours in limits.items())
    for operation in _operations(result):
        aggregate_limit = operation.get(RANGE_LIMIT_EXTENSION)
        for parameter in operation.get("parameters", []):
            schema = parameter["schema"] = _without_null(parameter.get("schema", {}))
            if parameter.get("in") == "query" and schema.get("type") == "array":
                schema["maxItems"] = settings.max_filter_values
            if parameter.get("in") == "query" and parameter.get("name") == "granularity":
                text = f"{_GRANULARITY_TEXT} Longest from..to range: {limits_text}."
                parameter["description"] = schema["description"] = text
                parameter["x-range-limits-hours"] = limits
            if parameter.get("in") == "query" and parameter.get("name") == "to" and aggregate_limit:
                text = f"{parameter['description']} At most {aggregate_limit} h after `from`."
                parameter["description"] = schema["description"] = text
    return result


def _without_null(schema: dict[str, Any]) -> dict[str, Any]:
    """An optional parameter's schema without its `null` branch (a query cannot send null)."""
    branches = schema.get("anyOf")
    if not isinstance(branches, list):
        return schema
    kept = [b for b in branches if b != {"type": "null"}]
    if len(kept) != 1:
        return schema
    rest = {k: v for k, v in schema.items() if k != "anyOf"}
    return {**kept[0], **rest}


def _operations(document: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        operation
        for path in document.get("paths", {}).values()
        for operation in path.values()
        if isinstance(operation, dict)
    ]


def install_contract(app: FastAPI, settings: ApiSettings) -> None:
    """Make `app.openapi()` (and /openapi.json) its document with the limits of `settings`."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:  # built once, on first use
            app.openapi_schema = with_settings(FastAPI.openapi(app), settings)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
