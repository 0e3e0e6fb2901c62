"""Write lambda-platform.json: the pex complete platform of the catalog Lambda's runtime.

The Lambda runs on AWS's `python3.12` base image: Amazon Linux 2023, glibc 2.34, x86_64. The
platform is what `pex3 interpreter inspect --markers --tags` reports for a CPython 3.12 on linux
x86_64 (here pyenv's), with the manylinux tags above glibc 2.34 cut: this machine's glibc may be
newer than the runtime's, and a wheel built for a newer glibc does not load on Amazon Linux 2023.

    python3.12 -m venv /tmp/pex-cli && /tmp/pex-cli/bin/pip install 'pex==2.105.2'
    python3 services/catalog-manager/lambda_platform.py --pex3 /tmp/pex-cli/bin/pex3 \\
        --python ~/.pyenv/versions/3.12.1/bin/python3.12

Pants' own pex (2.1.137) cannot identify a 3.12 interpreter, hence a newer pex for the inspection;
the JSON format is the same one Pants' pex reads.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

# AWS Lambda runtimes (https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtimes.html):
# python3.12 runs on Amazon Linux 2023, whose glibc is 2.34.
RUNTIME_PYTHON = "3.12"
RUNTIME_MACHINE = "x86_64"
RUNTIME_GLIBC = (2, 34)
OUTPUT = Path(__file__).with_name("lambda-platform.json")

_MANYLINUX = re.compile(r"^manylinux_(\d+)_(\d+)_")


def fits_glibc(platform_tag: str, glibc: tuple[int, int]) -> bool:
    """Whether a wheel platform tag loads on that glibc (non-manylinux tags pass through).

    The legacy aliases manylinux1/2010/2014 are glibc 2.5/2.12/2.17 (PEP 600), all below 2.34.
    """
    found = _MANYLINUX.match(platform_tag)
    return found is None or (int(found[1]), int(found[2])) <= glibc


def runtime_platform(inspected: dict[str, Any], glibc: tuple[int, int]) -> dict[str, Any]:
    """The complete platform of the runtime from an inspection of a matching interpreter."""
    markers = inspected["marker_environment"]
    if (markers["python_version"], markers["platform_machine"]) != (
        RUNTIME_PYTHON,
        RUNTIME_MACHINE,
    ):
        raise SystemExit(
            f"inspect a CPython {RUNTIME_PYTHON} on linux {RUNTIME_MACHINE}, not "
            f"{markers['python_version']} on {markers['platform_machine']}"
        )
    tags: list[str] = inspected["compatible_tags"]
    wanted = f"manylinux_{glibc[0]}_{glibc[1]}_{RUNTIME_MACHINE}"
    if not any(tag.endswith(f"-{wanted}") for tag in tags):
        raise SystemExit(f"this interpreter's glibc is older than the runtime's: no {wanted} tag")
    kept = [tag for tag in tags if fits_glibc(tag.split("-")[2], glibc)]
    # `path` (this machine's interpreter) is left out: it means nothing on Lambda.
    return {"marker_environment": markers, "compatible_tags": kept}


def main(argv: list[str] | None = None) -> None:
    """Inspect the interpreter with pex3 and write the runtime's complete platform."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pex3", default="pex3", help="a pex3 that can inspect CPython 3.12")
    parser.add_argument("--python", required=True, help="a CPython 3.12 on linux x86_64")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    inspected = json.loads(
        subprocess.run(
            [args.pex3, "interpreter", "inspect", "--markers", "--tags", "--python", args.python],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )
    platform = runtime_platform(inspected, RUNTIME_GLIBC)
    args.output.write_text(json.dumps(platform, indent=2) + "\n", encoding="utf-8")
    kept, cut = len(platform["compatible_tags"]), len(inspected["compatible_tags"])
    print(f"wrote {args.output}: {kept} tags of {cut}", file=sys.stderr)


if __name__ == "__main__":
    main()
