"""Stand-in for awsglue.job: Job records init and commit (Glue uses them for bookmarks)."""

from __future__ import annotations

from typing import Any

EVENTS: list[tuple[str, Any]] = []


class Job:
    def __init__(self, glue_context: Any) -> None:
        self.glue_context = glue_context

    def init(self, name: str, args: dict[str, str]) -> None:
        EVENTS.append(("init", (name, dict(args))))

    def commit(self) -> None:
        EVENTS.append(("commit", None))
