"""The build's layering rules, proven on real Pants: each forbidden import fails the build.

Copies the repository's Pants configuration (pants.toml, the root BUILD with its
`__dependencies_rules__`, the in-repo plugin, the requirements) into a temporary build root,
writes a small fixture tree there (real service paths, so the real rules select it) and runs
`./pants dependencies` on one importing file at a time: the allowed file must resolve, each
forbidden one must fail with Pants' DependencyRuleActionDeniedError naming the denied target.
Visibility rules are checked whenever Pants computes dependencies, so this is what `./pants test`,
`package` and `check` would do on the same import.

A script, not a test: Pants started inside a test takes minutes on this machine, so CI
(`.ci/run`) runs `python3 tests/build_rules/check_rules.py`. Exit 0 when every case behaves.
One pantsd serves all cases in the temporary root and is stopped at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# What is copied from the repository: the configuration the rules live in, nothing else.
CONFIG = (
    "pants",
    "pants.toml",
    "BUILD",
    "pants-plugins",
    "3rdparty/python/BUILD",
    "3rdparty/python/requirements.txt",
)

# A minimal tree at the real paths (the rules select by path), one target per source root.
BUILD_FILES = {
    "libs/common/src/BUILD": 'python_sources(name="lib", sources=["signal_common/**/*.py"])',
    "services/producer/src/BUILD": (
        'python_sources(name="lib", sources=["signal_producer/**/*.py"])'
    ),
    "services/producer/tests/BUILD": 'python_test_utils(name="support", sources=["*.py"])',
    "services/catalog-manager/src/BUILD": (
        'python_sources(name="lib", sources=["signal_catalog/**/*.py"])'
    ),
    "services/metrics-api/src/BUILD": 'python_sources(name="lib", sources=["signal_api/**/*.py"])',
    "services/dashboard/tests/BUILD": 'python_tests(name="tests", sources=["test_*.py"])',
    "deploy/local/BUILD": 'python_sources(name="signal_local", sources=["signal_local/*.py"])',
    "libs/testing/src/BUILD": 'python_sources(name="lib", sources=["signal_testing/**/*.py"])',
}
MODULES = {
    "libs/common/src/signal_common/__init__.py": "",
    "libs/common/src/signal_common/schema.py": "FIELDS = ()\n",
    "services/producer/src/signal_producer/__init__.py": "",
    "services/producer/src/signal_producer/core/__init__.py": "",
    "services/producer/src/signal_producer/core/pure.py": "VALUE = 1\n",
    "services/producer/src/signal_producer/adapters/__init__.py": "",
    "services/producer/src/signal_producer/adapters/kinesis.py": "import boto3\n",
    "services/producer/tests/producer_support.py": "HELPER = 1\n",
    "services/catalog-manager/src/signal_catalog/__init__.py": "",
    "services/metrics-api/src/signal_api/__init__.py": "",
    "services/metrics-api/src/signal_api/settings.py": "NAME = 'api'\n",
    "deploy/local/signal_local/__init__.py": "",
    "deploy/local/signal_local/endpoints.py": "HOST = '127.0.0.1'\n",
    "libs/testing/src/signal_testing/__init__.py": "",
    "libs/testing/src/signal_testing/fixture_lake.py": "ROWS = ()\n",
}


@dataclass(frozen=True)
class Case:
    """One importing file; `denied` is the dependency the rules must refuse (None: allowed)."""

    path: str
    source: str
    denied: str | None
    why: str


CASES = (
    Case(
        "services/producer/src/signal_producer/core/allowed.py",
        "import pyarrow\nimport signal_common.schema\nfrom signal_producer.core import pure\n",
        None,
        "core/ may import its own core/, signal_common and a pure library",
    ),
    Case(
        "services/dashboard/tests/test_api_subprocess.py",
        "import signal_api.settings\nimport signal_local.endpoints\n",
        None,
        "tests may use any service and the local stack",
    ),
    Case(
        "services/producer/src/signal_producer/core/client.py",
        "import boto3\n",
        "3rdparty/python:reqs#boto3",
        "core/ imports an AWS client library",
    ),
    Case(
        "services/producer/src/signal_producer/core/edge.py",
        "from signal_producer.adapters import kinesis\n",
        "services/producer/src/signal_producer/adapters/kinesis.py",
        "core/ imports its own adapters",
    ),
    Case(
        "services/catalog-manager/src/signal_catalog/peek.py",
        "import signal_api.settings\n",
        "services/metrics-api/src/signal_api/settings.py",
        "a service imports another service",
    ),
    Case(
        "services/producer/src/signal_producer/stack.py",
        "import signal_local.endpoints\n",
        "deploy/local/signal_local/endpoints.py",
        "src/ imports local-stack code",
    ),
    Case(
        "libs/testing/src/signal_testing/allowed.py",
        "import signal_common.schema\nimport signal_local.endpoints\nimport pyarrow\n",
        None,
        "test support may import signal_common, the local endpoints and third parties",
    ),
    Case(
        "services/producer/src/signal_producer/lake_fixture.py",
        "import signal_testing.fixture_lake\n",
        "libs/testing/src/signal_testing/fixture_lake.py",
        "src/ imports test support",
    ),
    Case(
        "libs/testing/src/signal_testing/upward.py",
        "import signal_api.settings\n",
        "services/metrics-api/src/signal_api/settings.py",
        "test support imports a service",
    ),
    Case(
        "services/producer/src/signal_producer/fixture.py",
        "import producer_support\n",
        "services/producer/tests/producer_support.py",
        "src/ imports test code",
    ),
    Case(
        "libs/common/src/signal_common/upward.py",
        "import signal_api.settings\n",
        "services/metrics-api/src/signal_api/settings.py",
        "libs/common imports a service",
    ),
)


def build_root(root: Path) -> None:
    """The configuration copied from the repository, plus the fixture tree and every case."""
    for name in CONFIG:
        source, target = REPO / name, root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, target)
    files = {**BUILD_FILES, **MODULES, **{c.path: c.source for c in CASES}}
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + ("\n" if name.endswith("BUILD") else ""))


def pants(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`./pants <args>` in the temporary build root."""
    return subprocess.run(
        [str(root / "pants"), "--no-dynamic-ui", *args],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )


def start_pantsd(root: Path, *, attempts: int = 3) -> None:
    """Start the root's pantsd. The client waits 60 s for it, which a busy machine can exceed;
    the daemon goes on starting, so a later attempt finds it."""
    for _ in range(attempts):
        done = pants(root, "list", "libs/common/src::")
        if done.returncode == 0:
            return
        if "waiting for pantsd to start" not in done.stderr:
            raise RuntimeError(f"pants failed in {root}:\n{done.stdout}{done.stderr}")
    raise RuntimeError(f"pantsd did not start in {root} after {attempts} attempts")


def run_case(root: Path, case: Case) -> str | None:
    """None when Pants does what the case expects, else what went wrong."""
    done = pants(root, "dependencies", case.path)
    output = done.stdout + done.stderr
    if case.denied is None:
        return None if done.returncode == 0 else f"refused ({case.why}):\n{output}"
    if done.returncode == 0:
        return f"allowed, but {case.why}:\n{output}"
    if "DependencyRuleActionDeniedError" not in output or case.denied not in output:
        return f"failed without denying {case.denied}:\n{output}"
    return None


def stop_pantsd(root: Path) -> None:
    """Stop the pantsd this script started in the temporary build root (by its pid file)."""
    for pid_file in (root / ".pids").glob("*/pantsd/pid"):
        with contextlib.suppress(ValueError, ProcessLookupError):
            os.kill(int(pid_file.read_text().strip()), signal.SIGTERM)


def main(argv: list[str] | None = None) -> int:
    """Run every case; print one line each; exit 1 if any case misbehaves."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="keep the temporary build root")
    args = parser.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="signal-build-rules-"))
    failures = 0
    try:
        build_root(root)
        subprocess.run(["git", "init", "-q", str(root)], check=True)
        started = time.monotonic()
        start_pantsd(root)
        print(f"pants ready in {root} ({time.monotonic() - started:.0f} s)")
        for case in CASES:
            started = time.monotonic()
            problem = run_case(root, case)
            verdict = "denied" if case.denied else "allowed"
            status = "ok" if problem is None else "FAILED"
            took = time.monotonic() - started
            print(f"{status:6} {verdict:7} {case.why}: {case.path} ({took:.0f} s)")
            if problem is not None:
                failures += 1
                print(problem, file=sys.stderr)
    finally:
        stop_pantsd(root)
        if args.keep:
            print(f"build root kept at {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    print(f"{len(CASES) - failures} of {len(CASES)} cases as expected")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
