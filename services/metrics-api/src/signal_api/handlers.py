"""Exception handlers: every failure becomes the API's error JSON with the right status."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from signal_api.core.errors import ApiError, InvalidParameterError
from signal_api.core.models import ErrorResponse
from signal_api.core.params import GRANULARITIES
from signal_api.deps import AuthError
from signal_api.query_params import install_contract
from signal_api.rendering import error_response
from signal_common.schema import NetworkType, Provider, Status

# Allowed values named in 422 messages, per parameter.
ALLOWED: dict[str, tuple[str, ...]] = {
    "granularity": GRANULARITIES,
    "network_type": tuple(v.value for v in NetworkType),
    "provider": tuple(v.value for v in Provider),
    "status": tuple(v.value for v in Status),
}
# The error responses every /v1 route documents.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse, "description": text}
    for code, text in (
        (401, "Missing API key"),
        (403, "Unknown API key"),
        (
            422,
            "Invalid parameter (invalid_parameter: names the parameter and the allowed values), "
            "or an answer past the response cap (result_too_large: says how to narrow the "
            "request)",
        ),
        (
            429,
            "Rate limit exceeded, or too many failed authentications from this client address "
            "(see Retry-After)",
        ),
        (
            503,
            "Query engine unavailable, or lake data it cannot read (lake_unreadable: names "
            "what could not be read); never a partial answer",
        ),
        (504, "Query engine timed out"),
    )
}


async def _api_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    if isinstance(exc, InvalidParameterError):
        return error_response(
            exc.status_code, exc.code, exc.message, parameter=exc.parameter, allowed=exc.allowed
        )
    return error_response(exc.status_code, exc.code, exc.message)


async def _auth_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AuthError)
    headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after else None
    if exc.status == 401:
        headers = {"WWW-Authenticate": "APIKey"}
    return error_response(exc.status, exc.code, exc.message, headers=headers)


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    first = errors[0] if errors else {"loc": ("query", "?"), "msg": "invalid request"}
    loc = [str(p) for p in first.get("loc", ()) if not isinstance(p, int)]
    parameter = loc[-1] if loc else "?"
    allowed = ALLOWED.get(parameter)
    if allowed is not None:
        message = f"parameter '{parameter}' must be one of: {', '.join(allowed)}"
    else:
        message = f"parameter '{parameter}': {first.get('msg', 'invalid value')}"
    return error_response(
        422,
        "invalid_parameter",
        message,
        parameter=parameter,
        allowed=list(allowed) if allowed else None,
    )


def install(app: FastAPI) -> None:
    """Register the handlers on `app`, and its contract: the OpenAPI document stating these
    error responses and the parameter limits of the app's settings (`app.state.context`)."""
    install_contract(app, app.state.context.settings)
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(AuthError, _auth_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
