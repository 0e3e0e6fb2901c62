"""Shared fixtures: the app synthesized once per session, offline, over a Glue bundle laid out
as glue_packaging/bundle.py writes it (the wheels' contents do not reach a template)."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template

from signal_aws.cdk_app import build
from signal_aws.settings import DeploySettings, repo_root

WHEELS = [
    "wheels/signal_common-{common}-py3-none-any.whl",
    "wheels/signal_stream_processor-{processor}-py3-none-any.whl",
    "wheels/pydantic-2.14.4-py3-none-any.whl",
]


def make_bundle(root: Path, processor_version: str) -> Path:
    """A bundle directory with the manifest, script and wheel files bundle.py writes."""
    bundle = root / "glue-bundle"
    common = (repo_root() / "libs" / "common" / "pyproject.toml").read_text("utf-8")
    common_version = tomllib.loads(common)["project"]["version"]
    wheels = [w.format(common=common_version, processor=processor_version) for w in WHEELS]
    for relative in ["glue_job.py", *wheels]:
        path = bundle / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"# {relative}\n", "utf-8")
    manifest = {
        "service": "stream-processor",
        "version": processor_version,
        "script": "glue_job.py",
        "wheels": wheels,
        "additional_python_modules": wheels,
        "python_modules_installer_option": "--no-deps",
        "glue_version": "6.0",
    }
    (bundle / "manifest.json").write_text(json.dumps(manifest), "utf-8")
    return bundle


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory) -> DeploySettings:
    root = tmp_path_factory.mktemp("deploy")
    base = DeploySettings()
    return DeploySettings(
        glue_bundle_dir=make_bundle(root, base.versions["stream-processor"]),
        image_context_dir=root / "contexts",
        alarm_email="oncall@example.com",
    )


@pytest.fixture(scope="session")
def assembly(
    settings: DeploySettings, tmp_path_factory: pytest.TempPathFactory
) -> cdk.cx_api.CloudAssembly:
    return build(settings, tmp_path_factory.mktemp("cdk.out")).synth()


@pytest.fixture(scope="session")
def templates(assembly: Any) -> dict[str, dict[str, Any]]:
    """Every stack's template, keyed by the stack's short name (Data, Processing, ...)."""
    return {
        stack.stack_name.removeprefix("SignalStream"): stack.template for stack in assembly.stacks
    }


@pytest.fixture(scope="session")
def template(templates: dict[str, dict[str, Any]]) -> Any:
    """Template assertions of one stack by short name."""
    return lambda name: Template.from_json(templates[name])
