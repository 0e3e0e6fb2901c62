"""cfn-lint over every synthesized template: no errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cfnlint.api import lint_all


def test_every_template_passes_cfn_lint(assembly: Any) -> None:
    checked = 0
    for stack in assembly.stacks:
        path = Path(assembly.directory) / stack.template_file
        matches = lint_all(path.read_text("utf-8"))
        errors = [m for m in matches if m.rule.id.startswith("E")]
        assert not errors, "\n".join(f"{stack.stack_name}: {m}" for m in errors)
        checked += 1
    assert checked == len(assembly.stacks) >= 3
