"""The metrics API (with its X-API-Key header) and the dashboard's health check over HTTP."""

from __future__ import annotations

from typing import Any

import httpx

from signal_smoke.core.errors import RefusedError, UnavailableError

API_KEY_HEADER = "X-API-Key"  # what signal_api.deps reads


def _error_of(response: httpx.Response) -> str:
    """`403 unknown_api_key (the API key is not recognised)` from the API's error body."""
    try:
        error = response.json().get("error", {})
        return f"{response.status_code} {error.get('code')} ({error.get('message')})"
    except (ValueError, AttributeError):
        return f"{response.status_code} {' '.join(response.text.split())[:120]!r}"


class ApiClient:
    """GETs of the metrics API's /v1 routes."""

    def __init__(self, client: httpx.Client, base_url: str, api_key: str | None) -> None:
        self._client = client
        self._base = base_url.rstrip("/")
        self._headers = {API_KEY_HEADER: api_key} if api_key else {}

    def get(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        """The JSON answer; 401/403 are refusals, other errors and no answer are transient."""
        url = f"{self._base}{path}"
        try:
            response = self._client.get(url, params=params, headers=self._headers)
        except httpx.HTTPError as exc:
            raise UnavailableError(f"the API at {self._base} did not answer: {exc}") from exc
        if response.status_code in (401, 403):
            raise RefusedError(f"the API refused the key: {_error_of(response)}")
        if response.status_code in (400, 404, 422):
            raise RefusedError(f"the API rejected GET {path}: {_error_of(response)}")
        if response.status_code != 200:
            raise UnavailableError(f"the API answered GET {path} with {_error_of(response)}")
        body: dict[str, Any] = response.json()
        return body


def dashboard_health(client: httpx.Client, base_url: str) -> tuple[int, str]:
    """Status and body of Streamlit's /_stcore/health under the dashboard's path."""
    url = f"{base_url.rstrip('/')}/_stcore/health"
    try:
        response = client.get(url)
    except httpx.HTTPError as exc:
        raise UnavailableError(f"the dashboard at {base_url} did not answer: {exc}") from exc
    return response.status_code, response.text
