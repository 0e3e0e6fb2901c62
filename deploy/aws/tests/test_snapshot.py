"""Snapshots of the synthesized templates (syrupy), so every infrastructure change shows up in
review. Asset hashes are masked: they follow file contents, not the infrastructure.

Refresh after an intended change: `./pants run deploy/aws:update-snapshots`.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from syrupy.assertion import SnapshotAssertion
from syrupy.extensions.json import JSONSnapshotExtension

STACKS = ("Data", "Processing", "Services", "Catalog", "Producer", "Monitoring")
HASH = re.compile(r"[0-9a-f]{64}")


def masked(template: dict[str, Any]) -> Any:
    """The template with asset hashes replaced by a marker."""
    return json.loads(HASH.sub("<asset-hash>", json.dumps(template, sort_keys=True)))


@pytest.fixture
def snapshot_json(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    return snapshot.use_extension(JSONSnapshotExtension)


@pytest.mark.parametrize("stack", STACKS)
def test_template_snapshot(
    stack: str, templates: dict[str, dict[str, Any]], snapshot_json: SnapshotAssertion
) -> None:
    assert masked(templates[stack]) == snapshot_json
