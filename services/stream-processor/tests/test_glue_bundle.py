"""The Glue bundle: which wheels it carries (the lockfile's closure less what Glue ships), which
artifacts fit Glue 6.0, and the manifest the deploy reads. No network."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from glue_packaging.bundle import (
    GLUE_6_PREINSTALLED,
    GLUE_PROVIDED,
    REPLACES_GLUE,
    BundleError,
    closure,
    glue_compatible,
    load_lock,
    write_bundle,
)

LOCK = Path("3rdparty/python/default.lock")


def test_the_bundle_carries_the_processors_runtime_closure_and_nothing_glue_ships() -> None:
    locked = load_lock(LOCK)
    needed = closure(locked)
    assert needed == [
        "annotated-types", "aws-kinesis-agg", "datasketches", "h3", "pydantic", "pydantic-core",
        "pydantic-settings", "python-dotenv", "typing-extensions", "typing-inspection",
    ]  # fmt: skip
    assert not set(needed) & GLUE_PROVIDED
    # of what Glue 6.0 ships, only what the closure cannot use at Glue's version is carried
    assert set(needed) & set(GLUE_6_PREINSTALLED) == set(REPLACES_GLUE) == {"typing-extensions"}
    assert "boto3" in locked  # present in the lock, left to Glue
    assert "protobuf" in locked  # aws-kinesis-agg needs it; Glue's 7.35.0 serves


def test_glue_6_versions_are_the_cited_ones() -> None:
    """The versions the issue and AWS's sources name for Glue 6.0 (see GLUE_6_PREINSTALLED)."""
    assert {name: GLUE_6_PREINSTALLED[name] for name in (
        "pyspark", "py4j", "pyarrow", "boto3", "botocore", "pandas", "numpy", "protobuf",
        "typing-extensions",
    )} == {
        "pyspark": "4.1.1", "py4j": "0.10.9.9", "pyarrow": "23.0.1", "boto3": "1.42.84",
        "botocore": "1.42.84", "pandas": "2.3.3", "numpy": "2.4.4", "protobuf": "7.35.0",
        "typing-extensions": "4.15.0",
    }  # fmt: skip
    assert len(GLUE_6_PREINSTALLED) == 70  # base-requirements.txt's 67, PySpark, Py4J, awsglue


@pytest.mark.parametrize(
    ("filename", "fits"),
    [
        ("pydantic-2.14.4-py3-none-any.whl", True),
        ("pydantic_core-2.50.5-cp313-cp313-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", True),
        ("pydantic_core-2.50.5-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", False),
        ("pydantic_core-2.50.5-cp313-cp313-manylinux_2_39_x86_64.whl", False),  # glibc too new
        ("pydantic_core-2.50.5-cp313-cp313-manylinux_2_17_aarch64.whl", False),
        ("protobuf-7.36.2-cp310-abi3-manylinux2014_x86_64.whl", True),
        ("pydantic-2.14.4.tar.gz", False),
    ],
)
def test_which_artifacts_install_on_glue_6(filename: str, fits: bool) -> None:
    assert glue_compatible(filename) is fits


def test_bundle_layout_and_manifest(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    dist.mkdir()
    for name in (
        "signal_common-0.2.0-py3-none-any.whl",
        "signal_stream_processor-0.3.0-py3-none-any.whl",
    ):
        (dist / name).write_bytes(b"wheel")
    script = tmp_path / "glue_job.py"
    script.write_text("print('job')\n")
    locked = load_lock(LOCK)
    fetched: list[str] = []
    downloaded: list[str] = []

    def fetch(url: str, sha256: str) -> bytes:
        fetched.append(url.rsplit("/", 1)[1])
        return b"artifact"

    def download_wheel(name: str, version: str, into: Path) -> Path:
        path = into / f"{name.replace('-', '_')}-{version}-cp313-cp313-manylinux2014_x86_64.whl"
        path.write_bytes(b"artifact")
        downloaded.append(name)
        return path

    out = tmp_path / "out"
    manifest = write_bundle(
        out=out, dist=dist, script=script, locked=locked, version="0.3.0",
        fetch=fetch, download_wheel=download_wheel, progress=lambda _: None,
    )  # fmt: skip
    assert json.loads((out / "manifest.json").read_text()) == manifest
    assert manifest["version"] == "0.3.0"
    assert manifest["script"] == "glue_job.py"
    assert manifest["python_modules_installer_option"] == "--no-deps"
    assert manifest["glue_version"] == "6.0"
    assert manifest["wheels"][:2] == [
        "wheels/signal_common-0.2.0-py3-none-any.whl",
        "wheels/signal_stream_processor-0.3.0-py3-none-any.whl",
    ]
    assert len(manifest["wheels"]) == 2 + 10
    assert manifest["replaces_glue_modules"] == {
        "typing-extensions": ["4.15.0", locked["typing-extensions"]["version"],
                              REPLACES_GLUE["typing-extensions"]],
    }  # fmt: skip
    assert sorted(p.name for p in (out / "wheels").iterdir()) == sorted(
        w.removeprefix("wheels/") for w in manifest["wheels"]
    )
    assert (out / "glue_job.py").read_text() == "print('job')\n"
    pinned = {n: locked[n]["version"] for n in locked}
    for wheel in fetched:  # every fetched artifact is the locked version
        name = wheel.split("-")[0].replace("_", "-").lower()
        assert f"-{pinned[name]}-" in wheel
    # only what the lock has no cp313 wheel of (it is locked for 3.11 - 3.12 here)
    assert set(downloaded) <= {"pydantic-core", "datasketches", "h3"}


def test_a_missing_project_wheel_is_a_plain_error(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match=r"no signal_common-\*\.whl in .*: run ./pants package"):
        write_bundle(
            out=tmp_path / "out", dist=tmp_path, script=tmp_path / "x.py",
            locked={}, version="0", progress=lambda _: None,
        )  # fmt: skip
