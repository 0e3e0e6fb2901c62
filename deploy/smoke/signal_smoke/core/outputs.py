"""What the smoke needs from a deployed stack, read from `cdk deploy --outputs-file` JSON."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

# CfnOutput names of the AWS app (deploy/aws/signal_aws/stacks/*.py) that the smoke reads
ALB_DNS_NAME = "AlbDnsName"
DASHBOARD_API_KEY_SECRET = "DashboardApiKeySecret"
STREAM_NAME = "StreamName"
GLUE_JOB_NAME = "GlueJobName"
ALARM_NAMES = "AlarmNames"


class OutputsError(ValueError):
    """An outputs file that cannot be read as CDK stack outputs."""


def flatten_outputs(document: Any) -> dict[str, str]:
    """`{stack: {OutputKey: value}}` as one `{OutputKey: value}`; a key two stacks give
    different values is refused (the smoke could not tell which one is meant)."""
    if not isinstance(document, Mapping):
        raise OutputsError("the outputs file is not a JSON object of stacks")
    flat: dict[str, str] = {}
    origin: dict[str, str] = {}
    for stack, outputs in document.items():
        if not isinstance(outputs, Mapping):
            raise OutputsError(f"stack {stack!r} in the outputs file is not an object of outputs")
        for key, value in outputs.items():
            text = str(value)
            if key in flat and flat[key] != text:
                raise OutputsError(
                    f"output {key!r} differs between stacks {origin[key]!r} and {stack!r}"
                )
            flat[str(key)] = text
            origin[str(key)] = str(stack)
    return flat


def parse_outputs(text: str) -> dict[str, str]:
    """The outputs of an outputs file's text (see `flatten_outputs`)."""
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise OutputsError(f"the outputs file is not JSON ({exc})") from None
    return flatten_outputs(document)


def alarm_names(value: str | None) -> tuple[str, ...]:
    """Alarm names from a comma-separated output or flag (blanks dropped)."""
    if not value:
        return ()
    return tuple(name.strip() for name in value.split(",") if name.strip())


def alb_url(dns_name: str) -> str:
    """The ALB's base URL from its DNS name (HTTP; the ALB redirects to HTTPS when it has a
    certificate, and the client follows)."""
    name = dns_name.strip().rstrip("/")
    return name if "://" in name else f"http://{name}"


def region_of_arn(arn: str | None) -> str | None:
    """The region field of an ARN (`arn:aws:secretsmanager:eu-west-1:…`), or None."""
    if not arn or not arn.startswith("arn:"):
        return None
    parts = arn.split(":")
    return parts[3] or None if len(parts) > 5 else None
