"""Entry point: `signal-api` serves the API with uvicorn; `signal-api alerts evaluate` runs the
alert evaluator (same image, settings and engine; one process of it per deployment)."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections.abc import Sequence

import uvicorn

from signal_api.app import create_app
from signal_api.settings import ApiSettings, get_settings
from signal_api.wiring import build_engine
from signal_common.logs import configure_logging


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="signal-api", description="Serve the metrics API (no arguments), or run a command."
    )
    commands = parser.add_subparsers(dest="command")
    alerts = commands.add_parser("alerts", help="alert evaluator").add_subparsers(
        dest="alerts_command", required=True
    )
    evaluate = alerts.add_parser(
        "evaluate", help="evaluate the alert rules over the lake every --every seconds"
    )
    evaluate.add_argument(
        "--every",
        type=float,
        default=None,
        help="seconds between cycles (SIGNAL_API_ALERT_EVERY_S)",
    )
    evaluate.add_argument("--once", action="store_true", help="run one cycle and exit")
    evaluate.add_argument(
        "--at",
        type=dt.datetime.fromisoformat,
        default=None,
        help="evaluation time of the one cycle (ISO 8601, UTC; implies --once)",
    )
    health = alerts.add_parser(
        "healthcheck",
        help="exit 0 when the evaluator running here (its /metrics on "
        "SIGNAL_ALERTS_METRICS_PORT) had a successful cycle within --max-age seconds, else 1 "
        "(the container's health check)",
    )
    health.add_argument(
        "--max-age",
        type=float,
        default=None,
        help="seconds since the last successful cycle (default: 3 x SIGNAL_API_ALERT_EVERY_S)",
    )
    return parser


def alerts_healthcheck(settings: ApiSettings, args: argparse.Namespace) -> None:
    """Exit 0 with one line when the evaluator is healthy, else 1 with the reason on stderr."""
    from signal_api.alerts.health import EvaluatorUnhealthyError, evaluator_health

    max_age = args.max_age if args.max_age is not None else 3 * settings.alert_every_s
    try:
        print(evaluator_health(max_age_s=max_age))
    except EvaluatorUnhealthyError as exc:
        print(f"unhealthy: {exc}", file=sys.stderr)
        raise SystemExit(1) from exc


def evaluate_alerts(settings: ApiSettings, args: argparse.Namespace) -> None:
    """Run the alert evaluator the settings describe."""
    from signal_api.alerts.evaluator import run_forever
    from signal_api.wiring import build_evaluator, serve_evaluator_metrics

    served = serve_evaluator_metrics()  # SIGNAL_ALERTS_METRICS_PORT
    engine = build_engine(settings)
    try:
        evaluator = build_evaluator(settings, engine, metrics=served[0] if served else None)
        if args.at is not None:
            at = args.at if args.at.tzinfo else args.at.replace(tzinfo=dt.UTC)
            evaluator.evaluate(at)
            return
        every = args.every if args.every is not None else settings.alert_every_s
        run_forever(evaluator, every_s=every, once=args.once)
    finally:
        engine.close()
        if served:
            served[1].shutdown()
            served[1].server_close()


def main(argv: Sequence[str] | None = None) -> None:
    """Serve the API on the configured host and port, or run the command given."""
    args = _parser().parse_args(argv)
    settings = get_settings()
    configure_logging(settings.log_level, json_lines=settings.log_json)
    if args.command == "alerts":
        if args.alerts_command == "healthcheck":
            alerts_healthcheck(settings, args)
        else:
            evaluate_alerts(settings, args)
        return
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
