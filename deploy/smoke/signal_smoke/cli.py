"""`signal-smoke`: after `cdk deploy`, prove the deployed platform works, one line per check."""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from pathlib import Path

from signal_smoke import wiring
from signal_smoke.core.checks import CheckResult, exit_code, format_line, format_summary
from signal_smoke.core.errors import ConfigError, SmokeError
from signal_smoke.core.marker import marker_run, marker_window
from signal_smoke.core.outputs import OutputsError, parse_outputs
from signal_smoke.core.runner import SKIPPABLE, Plan, Smoke
from signal_smoke.core.target import Given, Target, resolve_target
from signal_smoke.settings import SmokeSettings, get_settings

ENDPOINT_SERVICES = ("kinesis", "secretsmanager", "glue", "cloudwatch")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="signal-smoke",
        description="Send marked events through the deployed stream, wait for them in the "
        "metrics API's /v1/summary and /v1/pipeline, check that the Glue job is RUNNING, the "
        "alarms are OK and the dashboard answers. One line per check; exit 0 only if all pass.",
        epilog="Values come from flags, then the outputs file (cdk deploy --outputs-file), "
        "then SIGNAL_SMOKE_* settings. A check that cannot apply must be skipped by name.",
    )
    where = parser.add_argument_group("the stack")
    where.add_argument("--outputs", type=Path, help="outputs.json of `cdk deploy --outputs-file`")
    where.add_argument("--alb-url", help="the load balancer's URL (default: http://AlbDnsName)")
    where.add_argument("--api-url", help="the metrics API's base URL (default: the ALB's)")
    where.add_argument("--dashboard-url", help="the dashboard's base URL (default: the ALB's)")
    where.add_argument("--stream", help="the Kinesis stream (output StreamName)")
    where.add_argument(
        "--api-key-secret",
        help="Secrets Manager ARN or name of an API key (output DashboardApiKeySecret)",
    )
    where.add_argument(
        "--api-key", help="an API key itself (local runs; or set SIGNAL_SMOKE_API_KEY)"
    )
    where.add_argument("--glue-job", help="the stream processor's Glue job (output GlueJobName)")
    where.add_argument("--alarm-names", help="comma-separated alarm names (output AlarmNames)")
    where.add_argument("--alarm-prefix", help="check every alarm whose name starts with this")
    where.add_argument("--region", help="AWS region (default: the secret ARN's, then AWS_REGION)")
    for service in ENDPOINT_SERVICES:
        where.add_argument(
            f"--{service}-endpoint-url", metavar="URL", help=f"{service} endpoint (local stand-ins)"
        )
    how = parser.add_argument_group("the run")
    how.add_argument(
        "--skip", action="append", choices=SKIPPABLE, default=[], metavar="CHECK",
        help=f"do not run a check that cannot apply, by name ({', '.join(SKIPPABLE)}); repeatable",
    )  # fmt: skip
    how.add_argument("--events", type=int, help="marked events to send (default 20)")
    how.add_argument("--timeout", type=float, help="seconds each waiting check waits (300)")
    how.add_argument("--poll", type=float, help="seconds between two probes (5)")
    how.add_argument("--run-id", help="the run's marker (default: a random 12-hex id)")
    return parser


def _given(args: argparse.Namespace, settings: SmokeSettings) -> Given:
    endpoints = {
        "kinesis": args.kinesis_endpoint_url or settings.kinesis_endpoint_url,
        "secretsmanager": args.secretsmanager_endpoint_url or settings.secretsmanager_endpoint_url,
        "glue": args.glue_endpoint_url or settings.glue_endpoint_url,
        "cloudwatch": args.cloudwatch_endpoint_url or settings.cloudwatch_endpoint_url,
    }
    return Given(
        alb_url=args.alb_url,
        api_url=args.api_url,
        dashboard_url=args.dashboard_url,
        stream=args.stream,
        default_stream=settings.stream_name,
        api_key=args.api_key or settings.api_key,
        api_key_secret=args.api_key_secret,
        glue_job=args.glue_job,
        alarm_names=args.alarm_names,
        alarm_prefix=args.alarm_prefix,
        region=args.region or settings.aws_region,
        fallback_region=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION"),
        endpoints=endpoints,
    )


def _describe(target: Target, skip: frozenset[str]) -> list[str]:
    lines = [f"signal-smoke: API {target.api_url or '-'}, dashboard {target.dashboard_url or '-'}"]
    if "events" not in skip:
        key = (
            "the given key"
            if target.api_key
            else f"the key in {target.api_key_secret}"
            if target.api_key_secret
            else "no key"
        )
        lines.append(f"  stream {target.stream} ({target.region}), API key: {key}")
    if "glue" not in skip:
        lines.append(f"  Glue job {target.glue_job}")
    if "alarms" not in skip:
        alarms = ", ".join(target.alarm_names) or f"every alarm named {target.alarm_prefix}…"
        lines.append(f"  alarms {alarms}")
    lines.extend(f"  note: {note}" for note in target.notes)
    return lines


def main(argv: list[str] | None = None) -> int:
    """Parse, resolve the target, run every check, print one line each and a summary."""
    args = _parser().parse_args(argv)
    try:
        settings = get_settings()
        overrides = {
            "events": args.events, "timeout_s": args.timeout, "poll_s": args.poll,
        }  # fmt: skip
        settings = SmokeSettings.model_validate(
            {**settings.model_dump(), **{k: v for k, v in overrides.items() if v is not None}}
        )
    except ValueError as exc:
        print(f"error: {' '.join(str(exc).split())[:300]}", file=sys.stderr)
        return 2
    skip = frozenset(args.skip)
    try:
        outputs = parse_outputs(args.outputs.read_text("utf-8")) if args.outputs else {}
        target = resolve_target(_given(args, settings), outputs, skip=skip)
    except OSError as exc:
        print(
            f"error: cannot read the outputs file: {exc.strerror}: {args.outputs}", file=sys.stderr
        )
        return 2
    except (OutputsError, ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for line in _describe(target, skip):
        print(line, flush=True)
    started = time.monotonic()
    try:
        ports = wiring.build_ports(target, settings, need_key="events" not in skip)
    except SmokeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    run_id = args.run_id or uuid.uuid4().hex[:12]
    clock = wiring.SystemClock()
    marker = marker_run(
        run_id,
        marker_window(clock.now(), run_id, age_minutes=settings.marker_age_minutes),
        count=settings.events,
    )
    plan = Plan(
        stream=target.stream,
        glue_job=target.glue_job,
        alarm_names=target.alarm_names,
        alarm_prefix=target.alarm_prefix,
        timeout_s=settings.timeout_s,
        poll_s=settings.poll_s,
        complete_after_s=settings.complete_after_s,
        skip=skip,
    )

    def report(result: CheckResult) -> None:
        print(format_line(result), flush=True)

    def progress(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    with ports.http_client:
        results = Smoke(plan, ports, clock, report, progress).run(marker)
    print(format_summary(results, time.monotonic() - started), flush=True)
    return exit_code(results)


if __name__ == "__main__":
    sys.exit(main())
