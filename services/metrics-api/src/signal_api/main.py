"""Entry point: build settings, the engine and the app, and serve it with uvicorn."""

from __future__ import annotations

import uvicorn

from signal_api.adapters.engine import QueryEngine
from signal_api.app import create_app
from signal_api.settings import ApiSettings, get_settings
from signal_common.logs import configure_logging


def build_engine(settings: ApiSettings) -> QueryEngine:
    """The query engine the settings select."""
    if settings.engine == "athena":
        from signal_api.adapters.athena_engine import AthenaEngine

        return AthenaEngine(
            database=settings.glue_database,
            workgroup=settings.athena_workgroup,
            region=settings.aws_region,
            output_location=settings.athena_output_location,
            endpoint_url=settings.athena_endpoint_url,
            poll_interval_s=settings.athena_poll_interval_s,
            timeout_s=settings.query_timeout_s,
        )
    from signal_api.adapters.duckdb_engine import DuckDBEngine

    return DuckDBEngine(
        settings.lake_root, threads=settings.duckdb_threads, timeout_s=settings.query_timeout_s
    )


def main() -> None:
    """Serve the API on the configured host and port."""
    settings = get_settings()
    configure_logging(settings.log_level, json_lines=settings.log_json)
    engine = build_engine(settings)
    try:
        uvicorn.run(
            create_app(settings, engine),
            host=settings.host,
            port=settings.port,
            log_config=None,
            access_log=False,
            # the client address is the settings' call (trusted_proxy_hops), not uvicorn's: by
            # default uvicorn trusts X-Forwarded-For from 127.0.0.1
            proxy_headers=False,
        )
    finally:
        engine.close()


if __name__ == "__main__":
    main()
