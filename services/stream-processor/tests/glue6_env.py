"""AWS Glue 6.0's Python runtime, reproduced on this machine for tests.

- `glue_base_env()`: a venv on pyenv's Python 3.13 holding exactly what Glue 6.0 preinstalls
  (`bundle.GLUE_6_PREINSTALLED`, with its citation), built once per version set into
  ~/.cache/signal-stream/glue6-env-<hash> (pip from PyPI) and verified by `pip freeze`.
- `job_python()`: a throwaway copy of it, into which `install_bundle()` installs the bundle the
  way Glue does: `pip install <--python-modules-installer-option> <--additional-python-modules>`.
- `spark_conf_dir()`: the Spark settings Glue's runtime provides and our code does not set
  (master, the s3:// file system). Glue gives Spark EMRFS for s3://; here that is the stand-in
  glue6_runtime/S3RestFileSystem.java over moto's S3, compiled once against pyspark's Hadoop jars.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shlex
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from glue_packaging.bundle import GLUE_6_PREINSTALLED, GLUE_6_PYTHON, normalise

CACHE = Path(os.environ.get("SIGNAL_STREAM_CACHE", Path.home() / ".cache" / "signal-stream"))
PYENV_VERSIONS = Path.home() / ".pyenv" / "versions"
HERE = Path(__file__).resolve().parent
S3_FILESYSTEM_SOURCE = HERE / "glue6_runtime" / "S3RestFileSystem.java"
# Part of the cache key: bump when glue_base_env builds the environment differently.
ENV_RECIPE = "2: bytecode in pyspark.zip"


class GlueRuntimeError(RuntimeError):
    """The Glue-like environment could not be built or used."""


def glue_interpreter() -> Path:
    """pyenv's newest CPython of Glue 6.0's minor version."""
    found = sorted(
        PYENV_VERSIONS.glob(f"{GLUE_6_PYTHON}.*/bin/python{GLUE_6_PYTHON}"),
        key=lambda p: [int(x) for x in p.parents[1].name.split(".") if x.isdigit()],
    )
    if not found:
        raise GlueRuntimeError(f"no Python {GLUE_6_PYTHON} under {PYENV_VERSIONS} (pyenv install)")
    return found[-1]


def requirements_text() -> str:
    return "".join(f"{name}=={version}\n" for name, version in sorted(GLUE_6_PREINSTALLED.items()))


def env_key(interpreter: Path) -> str:
    text = f"{ENV_RECIPE}\n{interpreter}\n{requirements_text()}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def run(argv: list[str], *, what: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, capture_output=True, text=True, **kwargs)
    if done.returncode != 0:
        raise GlueRuntimeError(f"{what} failed ({done.returncode}): {done.stderr[-3000:]}")
    return done


def freeze(python: Path) -> dict[str, str]:
    """{normalised name: version} of every distribution in the environment of `python`."""
    out = run(
        [str(python), "-m", "pip", "list", "--format=freeze", "--disable-pip-version-check"],
        what="pip list",
    ).stdout
    pairs = (line.split("==") for line in out.splitlines() if "==" in line)
    return {normalise(name): version for name, version in pairs}


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def glue_base_env() -> tuple[Path, float]:
    """The cached Glue 6.0 environment (built if missing) and the seconds this call took."""
    started = time.monotonic()
    interpreter = glue_interpreter()
    env = CACHE / f"glue6-env-{env_key(interpreter)}"
    with _locked(CACHE / f"{env.name}.lock"):
        if not (env / "ready").exists():
            building = env.with_name(env.name + ".building")
            shutil.rmtree(building, ignore_errors=True)
            shutil.rmtree(env, ignore_errors=True)
            run([str(interpreter), "-m", "venv", str(building)], what="venv")
            requirements = building / "glue-6.0-preinstalled.txt"
            requirements.write_text(requirements_text())
            python = building / "bin" / "python"
            # pyspark is published as an sdist only; everything else as wheels, as Glue has them
            run(
                [
                    str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                    "--only-binary=:all:", "--no-binary=pyspark", "-r", str(requirements),
                ],
                what="installing Glue 6.0's modules",
            )  # fmt: skip
            _compile_worker_zip(python)
            got = freeze(python)
            if got != GLUE_6_PREINSTALLED:
                diff = set(got.items()) ^ set(GLUE_6_PREINSTALLED.items())
                raise GlueRuntimeError(f"the environment is not Glue 6.0's: {sorted(diff)}")
            building.rename(env)
            (env / "ready").write_text(f"built in {time.monotonic() - started:.0f} s\n")
    return env, time.monotonic() - started


def _compile_worker_zip(python: Path) -> None:
    """Put bytecode into pyspark.zip, from which Spark's Python workers import pyspark.

    zipimport cannot cache what it compiles, so each new worker compiles pyspark again: about
    2.5 s of CPU, which on a loaded 2-core machine outlasts the 10 s Spark (PythonWorkerFactory)
    gives a worker to connect back. The same sources, compiled once (unchecked-hash .pyc files
    beside the .py files, which zipimport reads first): no module or version changes.
    """
    import tempfile
    import zipfile

    site = python.parent.parent / "lib" / f"python{GLUE_6_PYTHON}" / "site-packages"
    archive = site / "pyspark" / "python" / "lib" / "pyspark.zip"
    with tempfile.TemporaryDirectory() as scratch:
        with zipfile.ZipFile(archive) as source:
            source.extractall(scratch)
        run(
            [
                str(python), "-m", "compileall", "-q", "-b", "--invalidation-mode",
                "unchecked-hash", scratch,
            ],
            what="compiling pyspark.zip",
        )  # fmt: skip
        rebuilt = archive.with_suffix(".zip.new")
        with zipfile.ZipFile(rebuilt, "w", zipfile.ZIP_DEFLATED) as target:
            for path in sorted(Path(scratch).rglob("*")):
                if path.is_file():
                    target.write(path, path.relative_to(scratch).as_posix())
        rebuilt.replace(archive)


def job_python(base: Path, into: Path) -> Path:
    """A private copy of the Glue environment (hard links: the cache is never modified)."""
    run(["cp", "-al", str(base), str(into)], what="copying the Glue environment")
    return into / "bin" / "python"


def install_bundle(python: Path, bundle: Path, manifest: dict[str, Any]) -> str:
    """Install the bundle's modules as the Glue job's arguments make Glue do it; pip's output."""
    options = shlex.split(str(manifest["python_modules_installer_option"]))
    modules = [str(bundle / path) for path in manifest["additional_python_modules"]]
    return run(
        [str(python), "-m", "pip", "install", "--disable-pip-version-check", *options, *modules],
        what="pip install of the bundle",
    ).stdout


def pip_check(python: Path) -> set[str]:
    """The broken requirements pip finds in the environment (one line each)."""
    done = subprocess.run(
        [str(python), "-m", "pip", "check", "--disable-pip-version-check"],
        capture_output=True,
        text=True,
    )
    return {line for line in done.stdout.splitlines() if line and "No broken" not in line}


def s3_filesystem_classes(python: Path) -> Path:
    """The compiled s3:// stand-in, cached by its source and the Hadoop jar it compiles against."""
    jars = Path(
        run(
            [str(python), "-c", "import pyspark, os; print(os.path.dirname(pyspark.__file__))"],
            what="locating pyspark",
        ).stdout.strip(),
        "jars",
    )
    hadoop = sorted(jars.glob("hadoop-client-api-*.jar"))
    if not hadoop:
        raise GlueRuntimeError(f"no hadoop-client-api jar in {jars}")
    source = S3_FILESYSTEM_SOURCE.read_bytes()
    key = hashlib.sha256(source + hadoop[-1].name.encode()).hexdigest()[:16]
    out = CACHE / f"s3-filesystem-{key}"
    with _locked(CACHE / f"{out.name}.lock"):
        if not (out / "S3RestFileSystem.class").exists():
            shutil.rmtree(out, ignore_errors=True)
            run(
                [
                    "javac", "-nowarn", "--release", "17", "-cp", str(hadoop[-1]),
                    "-d", str(out), str(S3_FILESYSTEM_SOURCE),
                ],
                what="javac S3RestFileSystem.java",
            )  # fmt: skip
    return out


def spark_conf_dir(into: Path, *, classes: Path, s3_endpoint_url: str) -> Path:
    """spark-defaults.conf with what Glue's Spark has and the job does not set itself."""
    into.mkdir(parents=True, exist_ok=True)
    settings = {
        "spark.master": "local[2]",
        "spark.driver.extraClassPath": str(classes),
        "spark.hadoop.fs.s3.impl": "S3RestFileSystem",
        "spark.hadoop.fs.s3.endpoint": s3_endpoint_url,
        "spark.ui.enabled": "false",
    }
    text = "".join(f"{key} {value}\n" for key, value in settings.items())
    (into / "spark-defaults.conf").write_text(text)
    return into
