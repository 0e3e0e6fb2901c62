"""The stack under test, resolved from flags (first), the outputs file, then settings."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from signal_smoke.core import outputs as out
from signal_smoke.core.errors import ConfigError


@dataclass(frozen=True)
class Given:
    """What the user gave, by flag or setting (None: not given)."""

    alb_url: str | None = None
    api_url: str | None = None
    dashboard_url: str | None = None
    stream: str | None = None
    default_stream: str | None = None
    api_key: str | None = None
    api_key_secret: str | None = None
    glue_job: str | None = None
    alarm_names: str | None = None
    alarm_prefix: str | None = None
    region: str | None = None
    fallback_region: str | None = None  # AWS_REGION / AWS_DEFAULT_REGION
    endpoints: Mapping[str, str | None] = field(default_factory=dict)


@dataclass(frozen=True)
class Target:
    """The deployed stack under test: where to send, ask and look."""

    api_url: str
    dashboard_url: str
    stream: str
    region: str
    api_key: str | None = None
    api_key_secret: str | None = None
    glue_job: str | None = None
    alarm_names: tuple[str, ...] = ()
    alarm_prefix: str | None = None
    endpoints: Mapping[str, str | None] = field(default_factory=dict)
    notes: tuple[str, ...] = ()


def resolve_target(given: Given, outputs: Mapping[str, str], *, skip: frozenset[str]) -> Target:
    """The target, or a ConfigError naming the flag or output that is missing."""
    notes: list[str] = []
    alb = given.alb_url or (
        out.alb_url(outputs[out.ALB_DNS_NAME]) if out.ALB_DNS_NAME in outputs else None
    )
    api_url = given.api_url or alb
    dashboard_url = given.dashboard_url or alb
    if "events" not in skip and not api_url:
        raise ConfigError(
            f"no API URL: pass --alb-url or --api-url, or an outputs file with {out.ALB_DNS_NAME}"
        )
    if "dashboard" not in skip and not dashboard_url:
        raise ConfigError(
            "no dashboard URL: pass --alb-url or --dashboard-url, an outputs file with "
            f"{out.ALB_DNS_NAME}, or --skip dashboard"
        )
    stream = given.stream or outputs.get(out.STREAM_NAME)
    if not stream and "events" not in skip:
        if not given.default_stream:
            raise ConfigError(f"no stream: pass --stream or an outputs file with {out.STREAM_NAME}")
        stream = given.default_stream
        notes.append(f"stream {stream} is the default (no --stream, no {out.STREAM_NAME} output)")
    secret = given.api_key_secret or outputs.get(out.DASHBOARD_API_KEY_SECRET)
    glue_job = given.glue_job or outputs.get(out.GLUE_JOB_NAME)
    if "glue" not in skip and not glue_job:
        raise ConfigError(
            f"no Glue job name: pass --glue-job, an outputs file with {out.GLUE_JOB_NAME}, "
            "or --skip glue"
        )
    names = out.alarm_names(given.alarm_names or outputs.get(out.ALARM_NAMES))
    if given.alarm_names and given.alarm_prefix:
        raise ConfigError("pass --alarm-names or --alarm-prefix, not both")
    prefix = None if names else given.alarm_prefix
    if "alarms" not in skip and not names and not prefix:
        raise ConfigError(
            f"no alarms: pass --alarm-names or --alarm-prefix, an outputs file with "
            f"{out.ALARM_NAMES}, or --skip alarms"
        )
    region = given.region or out.region_of_arn(secret) or given.fallback_region
    if not region:
        raise ConfigError("no AWS region: pass --region (or set AWS_REGION)")
    if given.api_key and secret:
        notes.append("the API key was given directly; the secret is not read")
    return Target(
        api_url=api_url or "",
        dashboard_url=dashboard_url or "",
        stream=stream or "",
        region=region,
        api_key=given.api_key,
        api_key_secret=None if given.api_key else secret,
        glue_job=glue_job,
        alarm_names=names,
        alarm_prefix=prefix,
        endpoints=dict(given.endpoints),
        notes=tuple(notes),
    )
