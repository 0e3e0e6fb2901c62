"""`./pants run deploy/aws:update-snapshots`: rewrite the template snapshots in the repository
(tests/__snapshots__/) after an intended infrastructure change. Pants runs tests in a sandbox,
so `--snapshot-update` has to run here, on the repository's own files."""

from __future__ import annotations

import sys

import pytest

from signal_aws.settings import repo_root


def main() -> int:
    """Run the snapshot test with --snapshot-update against the checked-out files."""
    tests = repo_root() / "deploy/aws/tests"
    return int(
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


if __name__ == "__main__":
    sys.exit(main())
