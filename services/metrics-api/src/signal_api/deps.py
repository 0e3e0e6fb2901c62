"""FastAPI dependencies and the query parameters routes share.

Routes declare what they need as annotated parameters: `ctx: Context` (the app's
collaborators) and the query parameters of `query_params`. Every /v1 router depends on
`client`, which authenticates the caller and applies its rate limit.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader

from signal_api.context import ApiContext
from signal_api.core.params import retry_after_seconds

API_KEY_HEADER = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="API key (sent as X-API-Key)."
)


class AuthError(Exception):
    """A caller refused: no key (401), unknown key (403) or over its rate limit (429)."""

    def __init__(self, status: int, code: str, message: str, retry_after: int | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.retry_after = status, code, message, retry_after


async def get_context(request: Request) -> ApiContext:
    """The app's context (async: a sync dependency costs a thread-pool hop per request)."""
    context: ApiContext = request.app.state.context
    return context


Context = Annotated[ApiContext, Depends(get_context)]


async def client(
    ctx: Context, request: Request, api_key: Annotated[str | None, Depends(API_KEY_HEADER)]
) -> str:
    """Authenticates the caller and applies its rate limit; returns the caller's name.

    Async on purpose: a sync dependency would cost a thread-pool hop on every request."""
    if ctx.settings.auth_enabled:
        if not api_key:
            raise AuthError(401, "missing_api_key", "send an API key in the X-API-Key header")
        name = ctx.keys.name_of(api_key)
        if name is None:
            raise AuthError(403, "unknown_api_key", "the API key is not recognised")
    else:
        name = f"ip:{request.client.host if request.client else 'unknown'}"
    wait = ctx.limiter.acquire(name)
    if wait > 0:
        seconds = retry_after_seconds(wait)
        raise AuthError(429, "rate_limited", f"rate limit exceeded; retry in {seconds} s", seconds)
    return name
