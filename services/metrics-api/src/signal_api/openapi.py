"""Print the API's OpenAPI document (the contract other teams code against).

`./pants run services/metrics-api/src/signal_api/openapi.py > services/metrics-api/openapi.json`
refreshes the committed copy; a test fails while the two differ, so every change to the
contract shows up in review.
"""

from __future__ import annotations

import json
from typing import Any

from signal_api.app import create_app
from signal_api.core.queries import Query
from signal_api.settings import ApiSettings


class _NoEngine:
    """The document does not depend on an engine; nothing is ever queried here."""

    name = "none"

    def run(self, query: Query) -> list[dict[str, Any]]:
        raise RuntimeError("the OpenAPI document runs no query")

    def close(self) -> None:
        """Nothing to close."""


def document() -> dict[str, Any]:
    """The OpenAPI document of the app."""
    settings = ApiSettings(lake_root="file:///openapi", auth_enabled=True)
    return create_app(settings, _NoEngine()).openapi()


def render() -> str:
    """The document as the committed openapi.json is written (sorted keys, 2-space indent)."""
    return json.dumps(document(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main() -> None:
    """Console entry point."""
    print(render(), end="")


if __name__ == "__main__":
    main()
