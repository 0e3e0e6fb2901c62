"""Settings base and JSON logging."""

from __future__ import annotations

import json
import logging

import pytest
from pydantic_settings import SettingsConfigDict

from signal_common.logs import configure_logging
from signal_common.settings import CommonSettings


class _ServiceSettings(CommonSettings):
    model_config = SettingsConfigDict(env_prefix="SIGNAL_TESTSVC_")


def test_defaults_are_the_seed_names() -> None:
    settings = _ServiceSettings()
    assert settings.stream_name == "mobile_coverage_logs"
    assert settings.glue_database == "mobile_network_aggregations"
    assert settings.kinesis_endpoint_url is None


def test_environment_with_service_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIGNAL_TESTSVC_KINESIS_ENDPOINT_URL", "http://127.0.0.1:4567")
    monkeypatch.setenv("SIGNAL_TESTSVC_STREAM_NAME", "s")
    settings = _ServiceSettings()
    assert settings.kinesis_endpoint_url == "http://127.0.0.1:4567"
    assert settings.stream_name == "s"


def test_json_logging_includes_context(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO")
    logging.getLogger("svc").info("batch written", extra={"batch_id": 7, "stream": "s"})
    line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert line["message"] == "batch written"
    assert (line["batch_id"], line["stream"], line["level"]) == (7, "s", "INFO")
