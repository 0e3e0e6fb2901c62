"""FastAPI dependencies and the query parameters routes share.

Routes declare what they need as annotated parameters: `ctx: Context` (the app's
collaborators) and the query parameters of `query_params`. Every /v1 router depends on
`client`, which authenticates the caller and applies its rate limit.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader

from signal_api.context import CALLER, ApiContext
from signal_api.core.params import retry_after_seconds

API_KEY_HEADER = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="API key (sent as X-API-Key)."
)


class AuthError(Exception):
    """A caller refused: no key (401), unknown key (403), over its rate limit or its address
    over its failed-authentication budget (429)."""

    def __init__(self, status: int, code: str, message: str, retry_after: int | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.retry_after = status, code, message, retry_after


async def get_context(request: Request) -> ApiContext:
    """The app's context (async: a sync dependency costs a thread-pool hop per request)."""
    context: ApiContext = request.app.state.context
    return context


Context = Annotated[ApiContext, Depends(get_context)]


def client_address(request: Request, trusted_proxy_hops: int) -> str:
    """The caller's address: the connection's peer, or, behind `trusted_proxy_hops` proxies
    that each append the address they saw to X-Forwarded-For, the entry that many from the
    right (entries further left are the caller's own claims, never trusted)."""
    peer = request.client.host if request.client else "unknown"
    if trusted_proxy_hops <= 0:
        return peer
    forwarded = [
        part.strip()
        for header in request.headers.getlist("x-forwarded-for")
        for part in header.split(",")
        if part.strip()
    ]
    if not forwarded:
        return peer
    # fewer entries than proxies: every entry was written by a trusted proxy; take the outermost
    return forwarded[-min(trusted_proxy_hops, len(forwarded))]


def _refused(ctx: ApiContext, request: Request, status: int, code: str, message: str) -> AuthError:
    """A failed authentication, counted against the client address: past its budget a 429."""
    wait = ctx.auth_failures.acquire(client_address(request, ctx.settings.trusted_proxy_hops))
    if wait > 0:
        seconds = retry_after_seconds(wait)
        return AuthError(
            429,
            "auth_rate_limited",
            f"too many failed authentications from this address; retry in {seconds} s",
            seconds,
        )
    return AuthError(status, code, message)


async def client(
    ctx: Context, request: Request, api_key: Annotated[str | None, Depends(API_KEY_HEADER)]
) -> str:
    """Authenticates the caller and applies its rate limit; returns the caller's name.

    Failed authentications are limited per client address (`auth_failures_per_minute`); a
    valid key is checked first, so it never waits behind another caller's failures.
    Async on purpose: a sync dependency would cost a thread-pool hop on every request."""
    if ctx.settings.auth_enabled:
        if not api_key:
            raise _refused(
                ctx, request, 401, "missing_api_key", "send an API key in the X-API-Key header"
            )
        name = ctx.keys.name_of(api_key)
        if name is None:
            raise _refused(ctx, request, 403, "unknown_api_key", "the API key is not recognised")
    else:
        name = f"ip:{client_address(request, ctx.settings.trusted_proxy_hops)}"
    wait = ctx.limiter.acquire(name)
    if wait > 0:
        seconds = retry_after_seconds(wait)
        raise AuthError(429, "rate_limited", f"rate limit exceeded; retry in {seconds} s", seconds)
    CALLER.set(name)  # whose slots and rate limit this request's computation uses
    return name
