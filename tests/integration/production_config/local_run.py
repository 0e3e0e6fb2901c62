"""Start a deployed unit's real entry point on this machine with exactly the environment the
deploy gives it, plus the only overrides a machine without AWS needs (ALLOWED_OVERRIDES).

Each unit runs in a subprocess on the resolve's interpreter, as its image runs it: the pex's
`module:function` entry point called the way pex calls it (`sys.exit(function())`) with the
container's arguments, or the Lambda handler imported and called with (event, context) as the
Lambda runtime does.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse, urlunparse

from production_config.deployed import IMAGE_PLUMBING, Unit, setting_names

from signal_local.endpoints import FAKE_CREDENTIALS, ManagedProcess, free_port

# The ONLY variables the test adds to or changes in what the templates and images give a unit,
# each for a reason this machine imposes. A unit's run fails if anything else differs.
ALLOWED_OVERRIDES: dict[str, str] = {
    "credentials": "AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN and "
    "AWS_EC2_METADATA_DISABLED: test credentials instead of the task/execution role's",
    "runtime region": "AWS_REGION and AWS_DEFAULT_REGION, which Fargate and Lambda set in every "
    "container/function, set to the deploy's region",
    "endpoints": "<prefix>KINESIS_/GLUE_/S3_/ATHENA_/SNS_ENDPOINT_URL of the unit's own "
    "settings classes: kinesalite and moto server on 127.0.0.1",
    "listen host": "the unit's <prefix>HOST that the deploy sets to 0.0.0.0: 127.0.0.1",
    "listen port": "the unit's <prefix>PORT equal to its container port, and a "
    "<prefix>METRICS_PORT the deploy sets (the evaluator's /metrics, read by its container "
    "health check): a free loopback port",
    "service discovery": "a URL on another unit's Cloud Map name (api.<namespace>:port): that "
    "unit's local URL",
    "process": "PATH, HOME and PYTHONPATH (the resolve's packages and the sources, standing in "
    "for the pex)",
}
CREDENTIAL_NAMES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
ENDPOINT_SETTINGS = {
    "KINESIS_ENDPOINT_URL": "kinesis",
    "GLUE_ENDPOINT_URL": "moto",
    "S3_ENDPOINT_URL": "moto",
    "ATHENA_ENDPOINT_URL": "moto",
    "SNS_ENDPOINT_URL": "moto",
}

# pex runs a `module:function` entry point as `sys.exit(function())`.
PEX_ENTRY = """
import importlib, sys
module, _, function = sys.argv.pop(1).partition(":")
sys.argv[0] = sys.argv.pop(1)
sys.exit(getattr(importlib.import_module(module), function)())
"""
# The Lambda runtime imports the handler's module and calls handler(event, context).
LAMBDA_INVOKE = """
import importlib, json, sys, types, uuid
module, _, function = sys.argv[1].rpartition(".")
context = types.SimpleNamespace(
    aws_request_id=str(uuid.uuid4()), function_name=sys.argv[2], memory_limit_in_mb=512,
    get_remaining_time_in_millis=lambda: 60_000,
)
handler = getattr(importlib.import_module(module), function)
print("LAMBDA_RESULT " + json.dumps(handler(json.load(sys.stdin), context)))
"""


@dataclass(frozen=True)
class Override:
    """One variable the test sets differently from the deploy, and the rule allowing it."""

    name: str
    value: str
    rule: str


@dataclass(frozen=True)
class LocalEndpoints:
    """The local stand-ins of the AWS endpoints."""

    kinesis: str
    moto: str


def settings_prefix(unit: Unit) -> str:
    return str(unit.settings.model_config.get("env_prefix", ""))


def local_overrides(
    unit: Unit,
    endpoints: LocalEndpoints,
    *,
    region: str,
    local_urls: dict[str, str],
    port: int | None,
) -> list[Override]:
    """What this machine needs changed in the unit's environment, each under its rule."""
    overrides = [Override(n, FAKE_CREDENTIALS[n], "credentials") for n in CREDENTIAL_NAMES]
    overrides.append(Override("AWS_EC2_METADATA_DISABLED", "true", "credentials"))
    overrides += [
        Override(n, region, "runtime region") for n in ("AWS_REGION", "AWS_DEFAULT_REGION")
    ]
    for cls in unit.all_settings:
        own_prefix, known = str(cls.model_config.get("env_prefix", "")), setting_names(cls)
        for suffix, endpoint in ENDPOINT_SETTINGS.items():
            if f"{own_prefix}{suffix}" in known:
                url = endpoints.kinesis if endpoint == "kinesis" else endpoints.moto
                overrides.append(Override(f"{own_prefix}{suffix}", url, "endpoints"))
    for cls in unit.all_settings:
        metrics_port = f"{cls.model_config.get('env_prefix', '')}METRICS_PORT"
        if metrics_port in unit.environment and metrics_port in setting_names(cls):
            overrides.append(Override(metrics_port, str(free_port()), "listen port"))
    prefix = settings_prefix(unit)
    if unit.environment.get(f"{prefix}HOST") == "0.0.0.0":
        overrides.append(Override(f"{prefix}HOST", "127.0.0.1", "listen host"))
    if unit.port is not None:
        port_name = f"{prefix}PORT"
        if unit.environment.get(port_name) != str(unit.port):
            raise AssertionError(
                f"{unit.id}: its container port is {unit.port} but {port_name} is "
                f"{unit.environment.get(port_name)!r}: the target group would find nothing"
            )
        overrides.append(Override(port_name, str(port), "listen port"))
    for name, value in unit.environment.items():
        parsed = urlparse(value)
        if parsed.scheme in ("http", "https") and parsed.hostname in local_urls:
            local = urlparse(local_urls[parsed.hostname])
            rewritten = urlunparse(parsed._replace(netloc=local.netloc))
            overrides.append(Override(name, rewritten, "service discovery"))
    pythonpath = os.pathsep.join(p for p in sys.path if p)
    overrides += [
        Override("PATH", os.environ.get("PATH", "/usr/bin:/bin"), "process"),
        Override("HOME", os.environ.get("HOME", "/tmp"), "process"),
        Override("PYTHONPATH", pythonpath, "process"),
    ]
    return overrides


def environment_of(
    unit: Unit, secrets: dict[str, str], overrides: list[Override]
) -> dict[str, str]:
    """The process environment: the deploy's variables (image ENV without its plumbing, the
    template's, the secrets' test values), then the overrides. Nothing from this process."""
    env = {k: v for k, v in unit.environment.items() if k not in IMAGE_PLUMBING}
    env.update(secrets)
    env.update({o.name: o.value for o in overrides})
    return env


def _argv(unit: Unit) -> list[str]:
    pex_path = unit.command[len(unit.command) - len(unit.arguments) - 1]
    return [sys.executable, "-c", PEX_ENTRY, unit.entry_point, pex_path, *unit.arguments]


def start_server(unit: Unit, env: dict[str, str], log_dir: Path, port: int) -> ManagedProcess:
    """The unit's server, in its own process group (the caller stops it)."""
    return start_process(unit, env, log_dir, url=f"http://127.0.0.1:{port}")


def start_process(unit: Unit, env: dict[str, str], log_dir: Path, *, url: str) -> ManagedProcess:
    """The unit's command, in its own process group, output to <log_dir>/<name>.log (the
    caller stops it)."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{unit.name}.log"
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(
            _argv(unit),
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
    return ManagedProcess(unit.name, url, process, log_path)


@dataclass(frozen=True)
class Probe:
    """The answer of a health check path."""

    status: int
    body: str
    seconds: float


def probe_until_answering(proc: ManagedProcess, path: str, *, timeout: float = 90.0) -> Probe:
    """Poll `path` until the server answers with any HTTP status; fail if it exits first."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if proc.process.poll() is not None:
            raise AssertionError(
                f"{proc.name} exited with {proc.process.returncode} before answering {path}:\n"
                + tail(proc.log_path)
            )
        try:
            with urllib.request.urlopen(proc.url + path, timeout=3) as response:
                body = response.read().decode(errors="replace")
                return Probe(response.status, body, time.monotonic() - started)
        except urllib.error.HTTPError as exc:
            return Probe(exc.code, exc.read().decode(errors="replace"), time.monotonic() - started)
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            time.sleep(0.2)
    raise AssertionError(
        f"{proc.name} did not answer {path} in {timeout:.0f} s:\n" + tail(proc.log_path)
    )


@dataclass(frozen=True)
class Completed:
    """A run-to-completion unit's exit status and output."""

    returncode: int
    stdout: str
    stderr: str
    seconds: float


def run_task(unit: Unit, env: dict[str, str], *, timeout: float = 150.0) -> Completed:
    """Run the container's command to its end."""
    started = time.monotonic()
    done = subprocess.run(
        _argv(unit), env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    return Completed(done.returncode, done.stdout, done.stderr, time.monotonic() - started)


def run_until(
    unit: Unit,
    env: dict[str, str],
    started: Callable[[], bool],
    log_dir: Path,
    *,
    timeout: float = 60.0,
) -> Completed:
    """Run the container's command until `started()` holds, then stop it as ECS stops a task
    (SIGTERM to the container's process, "Stopping a task", Amazon ECS Developer Guide) and
    wait for its end."""
    began = time.monotonic()
    out, err = log_dir / f"{unit.name}.out", log_dir / f"{unit.name}.err"
    with open(out, "wb") as stdout, open(err, "wb") as stderr:
        process = subprocess.Popen(
            _argv(unit), env=env, stdout=stdout, stderr=stderr, stdin=subprocess.DEVNULL
        )
        try:
            while not started():
                if process.poll() is not None or time.monotonic() - began > timeout:
                    break
                time.sleep(0.2)
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
            process.wait(timeout)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    return Completed(
        process.returncode,
        out.read_text(errors="replace"),
        err.read_text(errors="replace"),
        time.monotonic() - began,
    )


def run_health_check(unit: Unit, env: dict[str, str], *, timeout: float = 60.0) -> Completed:
    """Run the container's health check as ECS does, inside the container beside the running
    command (same environment): the image's pex with the check's arguments."""
    assert unit.health_arguments is not None, f"{unit.id} has no container health check"
    pex_path = unit.command[len(unit.command) - len(unit.arguments) - 1]
    argv = [sys.executable, "-c", PEX_ENTRY, unit.entry_point, pex_path, *unit.health_arguments]
    started = time.monotonic()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout)
    return Completed(done.returncode, done.stdout, done.stderr, time.monotonic() - started)


def invoke_function(
    unit: Unit, env: dict[str, str], event: dict[str, Any], *, timeout: float = 60.0
) -> tuple[Completed, dict[str, Any] | None]:
    """Invoke the Lambda handler once with `event`; its result (None when it raised)."""
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", LAMBDA_INVOKE, unit.entry_point, unit.name],
        input=json.dumps(event),
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    completed = Completed(done.returncode, done.stdout, done.stderr, time.monotonic() - started)
    for line in done.stdout.splitlines():
        if line.startswith("LAMBDA_RESULT "):
            return completed, json.loads(line.removeprefix("LAMBDA_RESULT "))
    return completed, None


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
