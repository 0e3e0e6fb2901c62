"""The catalog Lambda's pex fits the runtime it is deployed to, and its handler runs there.

The runtime, from AWS's documents:
- "Lambda runtimes" (https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtimes.html): the
  python3.12 runtime runs on Amazon Linux 2023; python3.11, the former base, on Amazon Linux 2.
- AL2023 User Guide, "Core toolchain packages glibc, gcc, binutils"
  (https://docs.aws.amazon.com/linux/al2023/ug/core-glibc.html): glibc 2.34. Amazon Linux 2
  ships glibc 2.26 ("Amazon Linux 2 FAQs", https://aws.amazon.com/amazon-linux-2/faqs/).
- "Working with .zip file archives for Python Lambda functions", dependency search path
  (https://docs.aws.amazon.com/lambda/latest/dg/python-package.html): the function's own
  directory, LAMBDA_TASK_ROOT (/var/task), comes first on sys.path.
- "Defined runtime environment variables"
  (https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html#configuration-envvars-runtime).
Wheel tags: PEP 425 (python-abi-platform), PEP 384 (abi3), PEP 600 (manylinux_X_Y needs glibc
>= X.Y; manylinux1/2010/2014 are glibc 2.5/2.12/2.17).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from signal_catalog.operations.sync import sync
from signal_catalog.settings import CatalogSettings
from signal_catalog.wiring import catalog_from, lake_from
from signal_common.lake import ALL_TABLES
from signal_testing.aws_events import s3_object_created

# Built by Pants for this test (runtime_package_dependencies in tests/BUILD).
LAMBDA_PEX = Path("services.catalog-manager/signal-catalog-lambda.pex")
ECS_PEX = Path("services.catalog-manager/signal-catalog.pex")
DOCKERFILE = Path("services/catalog-manager/Dockerfile.lambda")
PLATFORM = Path("services/catalog-manager/lambda-platform.json")


@dataclass(frozen=True)
class Runtime:
    """What a wheel must fit: an interpreter (CPython major.minor), a glibc, a machine."""

    python: tuple[int, int]
    glibc: tuple[int, int]
    machine: str = "x86_64"


LAMBDA_PYTHON312 = Runtime(python=(3, 12), glibc=(2, 34))  # Amazon Linux 2023
LAMBDA_PYTHON311 = Runtime(python=(3, 11), glibc=(2, 26))  # Amazon Linux 2: the former base
# The ECS image: python:3.11.7-slim-bookworm, Debian 12, whose glibc is 2.36
# (https://packages.debian.org/bookworm/libc6).
ECS_BOOKWORM = Runtime(python=(3, 11), glibc=(2, 36))

_LEGACY_MANYLINUX = {"manylinux1": (2, 5), "manylinux2010": (2, 12), "manylinux2014": (2, 17)}


def _platform_fits(tag: str, runtime: Runtime) -> bool:
    if tag == "any":
        return True
    found = re.fullmatch(r"manylinux_(\d+)_(\d+)_(\w+)", tag)
    if found:
        glibc, machine = (int(found[1]), int(found[2])), found[3]
    else:
        legacy, _, machine = tag.partition("_")
        if legacy not in _LEGACY_MANYLINUX:
            return False  # linux_*, musllinux_*, macosx_*, win_*: not portable to this runtime
        glibc = _LEGACY_MANYLINUX[legacy]
    return machine == runtime.machine and glibc <= runtime.glibc


def _python_fits(python_tag: str, abi_tag: str, runtime: Runtime) -> bool:
    found = re.fullmatch(r"(py|cp)(\d)(\d*)", python_tag)
    if not found:
        return False
    major, minor = int(found[2]), int(found[3] or 0)
    if found[1] == "py":  # pure Python: py3 or py3N and older
        return major == runtime.python[0] and (not found[3] or minor <= runtime.python[1])
    if abi_tag == "abi3":  # the stable ABI of CPython 3.N and later
        return major == runtime.python[0] and minor <= runtime.python[1]
    return (major, minor) == runtime.python


def misfits(wheels: list[str], runtime: Runtime) -> list[str]:
    """The wheels none of whose tags the runtime can load."""
    bad = []
    for wheel in wheels:
        python_tags, abi_tags, platform_tags = wheel.removesuffix(".whl").split("-")[-3:]
        if not any(
            _python_fits(py, abi, runtime) and _platform_fits(plat, runtime)
            for py in python_tags.split(".")
            for abi in abi_tags.split(".")
            for plat in platform_tags.split(".")
        ):
            bad.append(wheel)
    return bad


def pex_wheels(pex: Path) -> list[str]:
    """The wheel file names a pex carries, from its PEX-INFO."""
    with zipfile.ZipFile(pex) as archive:
        return sorted(json.loads(archive.read("PEX-INFO"))["distributions"])


def native(wheels: list[str]) -> list[str]:
    """The wheels with compiled code (a platform tag other than `any`)."""
    return [w for w in wheels if not w.removesuffix(".whl").endswith("-any")]


def test_every_wheel_of_the_lambda_pex_fits_the_python312_runtime() -> None:
    wheels = pex_wheels(LAMBDA_PEX)
    assert {w.split("-")[0] for w in native(wheels)} >= {"pyarrow", "duckdb", "pydantic_core"}
    assert misfits(wheels, LAMBDA_PYTHON312) == []


def test_the_rule_rejects_the_former_lambda_base() -> None:
    # The former image: the ECS pex (this machine's CPython 3.11) on python3.11, Amazon Linux 2.
    # pyarrow needs glibc 2.28 and duckdb 2.27; AL2 has 2.26.
    bad = misfits(pex_wheels(ECS_PEX), LAMBDA_PYTHON311)
    assert {w.split("-")[0] for w in bad} >= {"pyarrow", "duckdb"}
    # And the Lambda pex's CPython 3.12 wheels would not load on 3.11 either.
    assert {w.split("-")[0] for w in misfits(pex_wheels(LAMBDA_PEX), LAMBDA_PYTHON311)} >= {
        "pyarrow",
        "pydantic_core",
    }


def test_every_wheel_of_the_ecs_pex_fits_its_bookworm_image() -> None:
    assert native(pex_wheels(ECS_PEX))
    assert misfits(pex_wheels(ECS_PEX), ECS_BOOKWORM) == []


def test_the_complete_platform_is_the_runtime_cut_at_glibc_234() -> None:
    platform = json.loads(PLATFORM.read_text("utf-8"))
    markers = platform["marker_environment"]
    assert (markers["python_version"], markers["platform_machine"], markers["sys_platform"]) == (
        "3.12",
        "x86_64",
        "linux",
    )
    glibcs = {
        (int(m[1]), int(m[2]))
        for tag in platform["compatible_tags"]
        if (m := re.search(r"-manylinux_(\d+)_(\d+)_x86_64$", tag))
    }
    assert max(glibcs) == LAMBDA_PYTHON312.glibc
    assert not [t for t in platform["compatible_tags"] if "musllinux" in t or "macosx" in t]
    assert platform["compatible_tags"][0] == "cp312-cp312-manylinux_2_34_x86_64"


# --- the handler on a matching interpreter, laid out as Dockerfile.lambda lays out the image ---
@dataclass(frozen=True)
class Instruction:
    name: str
    args: str


def dockerfile_instructions(path: Path) -> list[Instruction]:
    """The instructions of a Dockerfile after FROM, continuation lines joined."""
    logical: list[str] = []
    pending = ""
    for line in path.read_text("utf-8").splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    instructions = []
    for text in logical:
        name, _, args = text.strip().partition(" ")
        instructions.append(Instruction(name, args.strip()))
    assert instructions[0].name == "FROM"
    return instructions[1:]


def python312() -> str:
    """pyenv's CPython 3.12 (the runtime's interpreter version)."""
    found = sorted(Path(os.environ["HOME"]).glob(".pyenv/versions/3.12.*/bin/python3.12"))
    assert found, "this machine's pyenv provides CPython 3.12 (~/.pyenv/versions/3.12.*)"
    return str(found[-1])


def lay_out_image(root: Path, python: str) -> tuple[Path, str]:
    """Run Dockerfile.lambda's instructions under `root` (standing for the image's /) with
    `python3` being `python`; the task root and the handler the image's CMD names."""
    task_root = root / "var" / "task"  # LAMBDA_TASK_ROOT of AWS's Lambda base images
    task_root.mkdir(parents=True)
    bin_dir = root / "bin"
    bin_dir.mkdir()
    (bin_dir / "python3").symlink_to(python)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "LAMBDA_TASK_ROOT": str(task_root)}
    workdir, handler = root, ""
    for step in dockerfile_instructions(DOCKERFILE):
        if step.name == "WORKDIR":
            path = step.args.replace("${LAMBDA_TASK_ROOT}", "/var/task")
            assert path.startswith("/"), f"WORKDIR {step.args}: absolute paths only"
            workdir = root / path.lstrip("/")
            workdir.mkdir(parents=True, exist_ok=True)
        elif step.name == "COPY":
            source, dest = step.args.split()
            assert source == str(LAMBDA_PEX), "the image copies the Lambda pex, and only it"
            shutil.copyfile(LAMBDA_PEX, workdir / dest)
        elif step.name == "RUN":
            subprocess.run(["/bin/sh", "-c", step.args], cwd=workdir, env=env, check=True)
        elif step.name == "CMD":
            (handler,) = json.loads(step.args)
        else:
            pytest.fail(f"Dockerfile.lambda has {step.name}, which this layout does not emulate")
    assert workdir == task_root, "the function starts in LAMBDA_TASK_ROOT"
    return task_root, handler


# The runtime interface client's way: import the module, call the function (task root first on
# sys.path, no site-packages of this machine: -I -S).
INVOKE = """
import importlib, json, sys
task_root, handler, event = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
sys.path.insert(0, task_root)
module_name, function = handler.rsplit(".", 1)
module = importlib.import_module(module_name)
result = getattr(module, function)(event, None)
import duckdb, pyarrow, pydantic_core
files = [m.__file__ for m in (module, duckdb, pyarrow, pydantic_core)]
print(json.dumps({"result": result, "files": files, "version": list(sys.version_info[:2])}))
"""


def test_the_handler_registers_a_partition_on_cpython_312_from_the_image_layout(
    tmp_path: Path,
    make_settings: Callable[..., CatalogSettings],
    moto_endpoint_url: str,
    s3: Any,
    bucket: str,
    database: str,
    lake_dir: Any,
    partitions_of: Callable[[str], set[tuple[str, int]]],
) -> None:
    task_root, handler = lay_out_image(tmp_path / "image", python312())
    assert handler == "signal_catalog.lambda_handler.handler"

    lake_root = f"s3://{bucket}/lake"
    settings = make_settings(lake_root=lake_root)
    # The scheduled sync task creates the tables first; the Lambda only adds partitions.
    sync(
        catalog_from(settings),
        lake_from(settings),
        list(ALL_TABLES),
        modes=settings.mode_of,
        dt_range=settings.projection_dt_range,
    )
    assert partitions_of("status_count") == set()
    key = "lake/status_count/dt=2026-11-23/hour=7/part-12-0.snappy.parquet"
    s3.upload_file(str(next((lake_dir.path / "status_count").rglob("*.parquet"))), bucket, key)
    # EventBridge's S3 "Object Created" event, as the deploy's rule delivers it
    event = s3_object_created(
        bucket, key, account="111111111111", region="eu-west-1", time="2026-11-23T07:12:00Z"
    )
    env = {
        # The environment deploy/aws gives the function (stacks/catalog.py, catalog_environment;
        # the crawler settings only with SIGNAL_AWS_CRAWLERS, unused by the handler).
        "SIGNAL_CATALOG_AWS_REGION": "us-east-1",
        "SIGNAL_CATALOG_GLUE_DATABASE": database,
        "SIGNAL_CATALOG_LAKE_ROOT": lake_root,
        "SIGNAL_CATALOG_PARTITION_MODE": "register",
        "SIGNAL_CATALOG_QUERY_ENGINE": "athena",
        "SIGNAL_CATALOG_ATHENA_WORKGROUP": "signal-stream",
        # AWS's endpoints are moto's here.
        "SIGNAL_CATALOG_GLUE_ENDPOINT_URL": moto_endpoint_url,
        "SIGNAL_CATALOG_S3_ENDPOINT_URL": moto_endpoint_url,
        "SIGNAL_CATALOG_ATHENA_ENDPOINT_URL": moto_endpoint_url,
        # What Lambda itself sets (test values for the credentials of the execution role).
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_LAMBDA_FUNCTION_NAME": "signal-stream-register-partitions",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
        "LAMBDA_TASK_ROOT": str(task_root),
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "PATH": "/usr/local/bin:/usr/bin:/bin",
    }
    run = subprocess.run(
        [python312(), "-I", "-S", "-c", INVOKE, str(task_root), handler, json.dumps(event)],
        cwd=task_root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    answer = json.loads(run.stdout.splitlines()[-1])
    assert answer["version"] == [3, 12]
    assert all(Path(f).is_relative_to(task_root) for f in answer["files"]), answer["files"]
    assert answer["result"] == {
        "registered": {"status_count": ["dt=2026-11-23/hour=7"]},
        "partitions_created": 1,
        "ignored_records": 0,
    }
    # The real effect: moto's Glue catalog has the partition.
    assert partitions_of("status_count") == {("2026-11-23", 7)}
