"""Assemble what the stream processor's AWS Glue 6.0 job needs, in the layout the deploy uploads.

Output (`--out`, default dist/glue/stream-processor):
  glue_job.py        the job script (signal_processor/glue_job.py)
  wheels/*.whl       signal-common and signal-stream-processor (built by `./pants package`),
                     plus every runtime dependency Glue 6.0 does not ship, at the versions
                     pinned in 3rdparty/python/default.lock, for Glue 6.0's Python 3.13 on
                     x86_64 Amazon Linux 2023 (glibc 2.34)
  manifest.json      {"service", "version", "script", "wheels", "additional_python_modules",
                      "python_modules_installer_option", "glue_version", "replaces_glue_modules"}
The dependency set is the lockfile's closure of the processor's own requirements less what Glue
6.0 preinstalls (GLUE_6_PREINSTALLED), except the few whose Glue version the closure cannot use
(REPLACES_GLUE, listed in the manifest); the job installs the wheels with `--no-deps`, so nothing
is resolved on Glue and nothing else Glue ships is replaced. Standard library only: runs with
any python3.
Usage: bundle.py [--dist DIR] [--out DIR] [--lock FILE]  (see package.sh)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

# The processor's runtime requirements (what its code imports at run time on Glue): datasketches
# for the KPI partials' distinct-device sketches (signal_common.partials, #24; its numpy is Glue's)
# and h3 for their hexagon cells (signal_processor.core.hexagons, #24; no dependency of its own).
ROOTS = ("pydantic", "pydantic-settings", "aws-kinesis-agg", "datasketches", "h3")
# Requirements the processor's wheel declares that the Glue job never imports, left out on
# purpose (pip check on Glue reports them unmet; tests/test_glue_runtime.py allows only these).
NOT_ON_GLUE = {"typer": "only signal_processor.cli (the local command) imports it"}
# What AWS Glue 6.0 preinstalls for a job's Python 3.13: base-requirements.txt of
# awslabs/aws-glue-libs, verbatim (branch main, which is Glue 6.0, at commit 0af215e; that
# repository's venv-migration guide takes it as "Base container libraries", and the AWS Glue
# documentation's "Python modules already provided in AWS Glue" gives the modules), then
# PySpark and Py4J, which come with Glue 6.0's Apache Spark 4.1.1 ("Migrating AWS Glue for Spark
# jobs to AWS Glue version 6.0": Spark 3.5.6 -> 4.1.1, Python 3.11 -> 3.13; the Spark 4.1.1
# distribution carries lib/py4j-0.10.9.9-src.zip), and the Python half of Glue's own `awsglue`
# library (AWSGlueDataplanePython 6.0.0, the version that repository's table gives for Glue 6.0).
# tests/glue6_env.py builds exactly this environment to run the bundle in.
GLUE_6_PYTHON = "3.13"
GLUE_6_PREINSTALLED_REQUIREMENTS = """
aiobotocore==3.4.0
aiohappyeyeballs==2.6.1
aiohttp==3.13.5
aioitertools==0.13.0
aiosignal==1.4.0
appdirs==1.4.4
attrs==26.1.0
boto3==1.42.84
botocore==1.42.84
certifi==2026.2.25
charset-normalizer==3.4.7
choreographer==1.2.1
contourpy==1.3.3
cycler==0.12.1
distlib==0.4.0
filelock==3.25.2
fonttools==4.62.1
frozenlist==1.8.0
fsspec==2026.3.0
googleapis-common-protos==1.75.0
grpcio==1.81.0
grpcio-status==1.81.0
idna==3.11
iniconfig==2.3.0
jmespath==1.1.0
kaleido==1.2.0
kiwisolver==1.5.0
logistro==2.0.1
matplotlib==3.10.8
multidict==6.7.1
narwhals==2.19.0
numpy==2.4.4
orjson==3.11.8
packaging==26.0
pandas==2.3.3
pillow==12.2.0
pip==24.0
platformdirs==4.9.6
plotly==6.7.0
pluggy==1.6.0
propcache==0.4.1
protobuf==7.35.0
pyarrow==23.0.1
Pygments==2.20.0
pyparsing==3.3.2
pytest==9.0.3
pytest-timeout==2.4.0
python-dateutil==2.9.0.post0
python-discovery==1.2.2
pytz==2026.1.post1
PyYAML==6.0.3
requests==2.33.1
s3fs==2026.3.0
s3transfer==0.16.0
seaborn==0.13.2
setuptools==79.0.1
simplejson==3.20.2
six==1.17.0
tenacity==9.1.2
typing_extensions==4.15.0
tzdata==2026.1
urllib3==2.6.3
uv==0.11.6
virtualenv==21.2.1
wrapt==2.1.2
yarl==1.23.0
zstandard==0.25.0
pyspark==4.1.1
py4j==0.10.9.9
AWSGlueDataplanePython==6.0.0
"""


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


GLUE_6_PREINSTALLED = {
    normalise(name): version
    for name, version in (
        line.split("==") for line in GLUE_6_PREINSTALLED_REQUIREMENTS.split() if "==" in line
    )
}
# Modules Glue 6.0 ships at a version our closure cannot use; the bundle carries the locked
# version, which `pip install --no-deps` puts in place of Glue's (the manifest lists them).
REPLACES_GLUE = {
    "typing-extensions": "pydantic 2.14 and pydantic-core 2.50 require typing-extensions>=4.16.0",
}
# Everything else Glue ships is left to Glue: the bundle never carries another version of it.
GLUE_PROVIDED = frozenset(GLUE_6_PREINSTALLED) - frozenset(REPLACES_GLUE)
PYTHON_TAGS = frozenset({"py3", "py2.py3", "cp313"})
_MANYLINUX = re.compile(r"^manylinux_2_(\d+)_x86_64$|^manylinux(1|2010|2014)_x86_64$")
GLIBC_MINOR = 34  # Amazon Linux 2023


class BundleError(RuntimeError):
    """The bundle cannot be built (missing wheel, no compatible artifact, bad download)."""


def load_lock(path: Path) -> dict[str, dict[str, Any]]:
    """The lockfile's requirements by normalised project name."""
    text = "".join(line for line in path.read_text().splitlines(True) if not line.startswith("//"))
    lock = json.loads(text)
    return {
        normalise(req["project_name"]): req
        for resolve in lock["locked_resolves"]
        for req in resolve["locked_requirements"]
    }


def _requirement_name(spec: str) -> str | None:
    """The project a `requires_dists` entry needs unconditionally (None: extras/other platforms)."""
    if ";" in spec:
        marker = spec.split(";", 1)[1]
        if (
            "extra ==" in marker
            or 'sys_platform == "win32"' in marker
            or 'python_version < "3.1' in marker
        ):
            return None
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", spec)
    return normalise(match.group(1)) if match else None


def closure(locked: dict[str, dict[str, Any]], roots: tuple[str, ...] = ROOTS) -> list[str]:
    """The roots and everything they need per the lockfile, less what Glue provides; sorted."""
    needed: set[str] = set()
    todo = [normalise(r) for r in roots]
    while todo:
        name = todo.pop()
        if name in needed or name in GLUE_PROVIDED:
            continue
        if name not in locked:
            raise BundleError(f"{name} is not in the lockfile")
        needed.add(name)
        for spec in locked[name].get("requires_dists", []):
            dep = _requirement_name(spec)
            if dep and dep in locked:
                todo.append(dep)
    return sorted(needed)


def glue_compatible(filename: str) -> bool:
    """Whether a wheel installs on Glue 6.0 (CPython 3.13, x86_64, glibc 2.34)."""
    if not filename.endswith(".whl"):
        return False
    python, abi, platform = filename[: -len(".whl")].split("-")[-3:]
    if not (set(python.split(".")) & PYTHON_TAGS or (abi == "abi3" and python.startswith("cp3"))):
        return False
    for tag in platform.split("."):
        if tag == "any":
            return True
        match = _MANYLINUX.match(tag)
        if match and (match.group(1) is None or int(match.group(1)) <= GLIBC_MINOR):
            return True
    return False


def pick_artifact(req: dict[str, Any]) -> dict[str, str] | None:
    """The lockfile artifact of `req` that Glue installs (a pure wheel before a binary one);
    None when the lockfile has none for Glue's Python 3.13 (it is locked for 3.11 - 3.12 here)."""
    wheels = [a for a in req["artifacts"] if glue_compatible(a["url"].rsplit("/", 1)[1])]
    wheels.sort(key=lambda a: (not a["url"].endswith("-any.whl"), a["url"]))
    return dict(wheels[0]) if wheels else None


def pip_download(name: str, version: str, into: Path) -> Path:
    """The wheel of exactly `name==version` for Glue 6.0's platform, fetched by pip from PyPI
    (pip checks PyPI's hashes), for the locked versions whose lock has no such wheel."""
    command = [
        sys.executable, "-m", "pip", "download", f"{name}=={version}", "--no-deps",
        "--only-binary=:all:", "--python-version", "3.13", "--implementation", "cp",
        "--abi", "cp313", "--platform", f"manylinux_2_{GLIBC_MINOR}_x86_64", "--platform",
        "manylinux2014_x86_64", "--dest", str(into), "--quiet", "--disable-pip-version-check",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True)
    found = sorted(into.glob(f"{normalise(name).replace('-', '_')}-{version}-*.whl"))
    if done.returncode != 0 or not found:
        raise BundleError(
            f"pip could not download {name}=={version} for Glue 6.0: {done.stderr[-300:]}"
        )
    return found[0]


def download(url: str, sha256: str) -> bytes:
    """An artifact's bytes: from pex's download cache when present, else from its URL; verified."""
    name = url.rsplit("/", 1)[1]
    cached = Path(os.environ.get("PEX_ROOT", Path.home() / ".pex"), "downloads", sha256, name)
    data = (
        cached.read_bytes() if cached.is_file() else urllib.request.urlopen(url, timeout=300).read()
    )
    if hashlib.sha256(data).hexdigest() != sha256:
        raise BundleError(f"sha256 mismatch for {url}")
    return bytes(data)


def project_version(pyproject: Path) -> str:
    match = re.search(r'^version\s*=\s*"([^"]+)"', pyproject.read_text(), re.MULTILINE)
    if not match:
        raise BundleError(f"no version in {pyproject}")
    return match.group(1)


def write_bundle(
    *,
    out: Path,
    dist: Path,
    script: Path,
    locked: dict[str, dict[str, Any]],
    version: str,
    fetch: Callable[[str, str], bytes] = download,
    download_wheel: Callable[[str, str, Path], Path] = pip_download,
    progress: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Write the bundle under `out` and return its manifest."""
    own = []
    for pattern in ("signal_common-*.whl", "signal_stream_processor-*.whl"):
        found = sorted(dist.glob(pattern))
        if not found:
            raise BundleError(f"no {pattern} in {dist}: run ./pants package first (see package.sh)")
        own.append(found[-1])
    if out.exists():
        shutil.rmtree(out)
    (out / "wheels").mkdir(parents=True)
    shutil.copy(script, out / "glue_job.py")
    wheels = []
    for wheel in own:
        shutil.copy(wheel, out / "wheels" / wheel.name)
        wheels.append(f"wheels/{wheel.name}")
        progress(f"  {wheel.name} (this repository)")
    for name in closure(locked):
        pinned = locked[name]["version"]
        artifact = pick_artifact(locked[name])
        if artifact is not None:
            filename = artifact["url"].rsplit("/", 1)[1]
            (out / "wheels" / filename).write_bytes(fetch(artifact["url"], artifact["hash"]))
            source = "the lockfile's artifact"
        else:
            filename = download_wheel(name, pinned, out / "wheels").name
            source = "the locked version, cp313 wheel from PyPI"
        wheels.append(f"wheels/{filename}")
        progress(f"  {filename} ({name} {pinned}: {source})")
    manifest = {
        "service": "stream-processor",
        "version": version,
        "script": "glue_job.py",
        "wheels": wheels,
        # Glue's --additional-python-modules: the wheels' S3 paths, relative to where the
        # bundle is uploaded (the deploy prefixes them with the bucket and version)
        "additional_python_modules": wheels,
        "python_modules_installer_option": "--no-deps",
        "glue_version": "6.0",
        # Glue 6.0 modules the bundle's version takes the place of: {name: [Glue's, ours, why]}
        "replaces_glue_modules": {
            name: [GLUE_6_PREINSTALLED[name], locked[name]["version"], why]
            for name, why in REPLACES_GLUE.items()
            if name in locked
        },
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    root = Path(__file__).resolve().parents[3]
    parser.add_argument(
        "--dist", type=Path, default=root / "dist", help="where ./pants package wrote wheels"
    )
    parser.add_argument("--out", type=Path, default=root / "dist" / "glue" / "stream-processor")
    parser.add_argument("--lock", type=Path, default=root / "3rdparty" / "python" / "default.lock")
    args = parser.parse_args(argv)
    service = root / "services" / "stream-processor"
    try:
        print(f"bundling the Glue 6.0 job into {args.out}:")
        manifest = write_bundle(
            out=args.out,
            dist=args.dist,
            script=service / "src" / "signal_processor" / "glue_job.py",
            locked=load_lock(args.lock),
            version=project_version(service / "pyproject.toml"),
        )
    except (BundleError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {len(manifest['wheels'])} wheels, glue_job.py and manifest.json to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
