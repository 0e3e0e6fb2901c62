"""`./pants run deploy/aws:update-snapshots`: rewrite the template snapshots in the repository
(tests/__snapshots__/) after an intended infrastructure change. Pants runs tests in a sandbox,
so `--snapshot-update` has to run here, on the repository's own files.

If the run fails (synthesis fails, e.g. on a cdk-nag finding), syrupy would delete every
snapshot no test asserted; the snapshots are put back as they were instead."""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

import pytest

from signal_aws.settings import repo_root


def main() -> int:
    """Run the snapshot test with --snapshot-update against the checked-out files; on failure
    leave the snapshots as they were."""
    tests = repo_root() / "deploy/aws/tests"
    snapshots = tests / "__snapshots__"
    with tempfile.TemporaryDirectory() as scratch:
        kept = Path(scratch) / "snapshots"
        if snapshots.exists():
            shutil.copytree(snapshots, kept)
        code = int(
            pytest.main(
                [
                    str(tests / "test_snapshot.py"),
                    "--snapshot-update",
                    "-p",
                    "no:cacheprovider",
                    "-q",
                    f"--rootdir={tests}",
                ]
            )
        )
        if code != 0 and kept.exists():
            shutil.rmtree(snapshots, ignore_errors=True)
            shutil.copytree(kept, snapshots)
            print(f"update-snapshots: the run failed; {snapshots} is unchanged", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
