"""Stand-in for awsglue.utils.getResolvedOptions: `--name value` pairs for the given names;
a missing name is an error, as in Glue (which exits through argparse)."""

from __future__ import annotations


def getResolvedOptions(argv: list[str], names: list[str]) -> dict[str, str]:  # noqa: N802
    found: dict[str, str] = {}
    for name in names:
        flag = f"--{name}"
        if flag not in argv or argv.index(flag) + 1 >= len(argv):
            raise SystemExit(f"error: the following arguments are required: {flag}")
        found[name] = argv[argv.index(flag) + 1]
    return found
