"""Settings come from SIGNAL_PRODUCER_* variables and share the common fields."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from signal_producer.settings import ProducerSettings


def test_environment_overrides_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIGNAL_PRODUCER_CONCURRENCY", "3")
    monkeypatch.setenv("SIGNAL_PRODUCER_KINESIS_ENDPOINT_URL", "http://127.0.0.1:4567")
    monkeypatch.setenv("SIGNAL_PRODUCER_STREAM_NAME", "other")
    monkeypatch.setenv("SIGNAL_PROCESSOR_CONCURRENCY", "9")  # another service's prefix
    settings = ProducerSettings()
    assert settings.concurrency == 3
    assert settings.kinesis_endpoint_url == "http://127.0.0.1:4567"
    assert settings.stream_name == "other"
    assert settings.partition_key == "device_id"


def test_defaults_and_validation(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CONCURRENCY", "STREAM_NAME", "KINESIS_ENDPOINT_URL", "TARGET_RPS"):
        monkeypatch.delenv(f"SIGNAL_PRODUCER_{name}", raising=False)
    settings = ProducerSettings()
    assert settings.stream_name == "mobile_coverage_logs"
    assert settings.target_rps == 0.0
    monkeypatch.setenv("SIGNAL_PRODUCER_TARGET_RPS", "-5")
    with pytest.raises(ValidationError):
        ProducerSettings()
