"""The app factory: routes → service functions → query engine, behind cache and auth.

Where things are: `routes/` (one module per area), `deps.py` (auth and rate limit),
`query_params.py` (shared query parameters), `context.py` (engine, cache, limits and clock of
one app; `wiring.py` builds it), `handlers.py` (errors to JSON), `rendering.py` (bodies
rendered once), `observability.py` (Prometheus).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from signal_api import __version__, handlers
from signal_api.adapters.engine import QueryEngine
from signal_api.observability import MetricsMiddleware
from signal_api.routes import kpis, meta, network, ops, pipeline
from signal_api.settings import ApiSettings
from signal_api.wiring import build_context


def create_app(
    settings: ApiSettings,
    engine: QueryEngine,
    *,
    clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    monotonic: Callable[[], float] = time.monotonic,
) -> FastAPI:
    """The API wired to a query engine (the caller owns and closes the engine)."""
    context = build_context(settings, engine, clock=clock, monotonic=monotonic)
    app = FastAPI(
        title="Signal Stream Metrics API",
        version=__version__,
        description=(
            "Network KPIs computed from the lake's partial aggregates (Σsum/Σcount, never an "
            "average of averages). Time ranges are half-open [from, to) over 1-minute window "
            "starts (UTC). Send `X-API-Key` unless auth is disabled."
        ),
    )
    app.state.context = context
    handlers.install(app)
    mounted = [("/v1", r) for r in (kpis.router, network.router, pipeline.router, meta.router)]
    mounted.append(("", ops.router))
    for prefix, router in mounted:
        app.include_router(router, prefix=prefix)

    # the paths the metrics label by route; anything else counts as "unmatched"
    known = frozenset(
        [str(getattr(r, "path", "")) for r in app.routes]
        + [
            prefix + str(getattr(r, "path", ""))
            for prefix, router in mounted
            for r in router.routes
        ]
    )
    app.add_middleware(MetricsMiddleware, metrics=context.metrics, known_paths=known)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET"],
            allow_headers=["X-API-Key"],
        )
    return app
