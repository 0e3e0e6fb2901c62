"""`signal-processor run`: expected failures end in one plain sentence and exit 1 (no Spark
starts, no traceback)."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from typer.testing import CliRunner

from signal_processor.cli import app, plain_error


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run(*args: str) -> Any:
    return CliRunner().invoke(app, ["run", "--lake-root", "file:///tmp/unused-lake", *args])


def _one_sentence(output: str) -> str:
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, output
    assert "Traceback" not in output
    return lines[0]


def test_unreachable_endpoint() -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    result = _run("--endpoint-url", url, "--stream", "s")
    assert result.exit_code == 1
    line = _one_sentence(result.output)
    assert line.startswith(f"error: cannot reach Kinesis at {url}: Could not connect")


def test_missing_stream(kinesis_endpoint_url: str) -> None:
    result = _run("--endpoint-url", kinesis_endpoint_url, "--stream", "no-such-stream")
    assert result.exit_code == 1
    assert _one_sentence(result.output) == (
        f"error: stream 'no-such-stream' does not exist at {kinesis_endpoint_url}."
    )


@pytest.fixture
def no_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def test_missing_credentials(no_credentials: None, kinesis_endpoint_url: str) -> None:
    result = _run("--endpoint-url", kinesis_endpoint_url, "--stream", "s")
    assert result.exit_code == 1
    assert _one_sentence(result.output).startswith("error: no AWS credentials found")


def test_bad_setting() -> None:
    result = _run("--trigger-seconds", "0", "--stream", "s")
    assert result.exit_code == 1
    assert _one_sentence(result.output) == (
        "error: invalid setting: trigger_seconds: Input should be greater than 0."
    )


def test_plain_error_finds_our_message_inside_a_java_trace() -> None:
    java = (
        "[STREAM_FAILED] Query [id = 1] terminated with exception: "
        "org.apache.spark.api.python.PythonException: Traceback (most recent call last):\n"
        '  File "x.py", line 3, in latestOffset\n'
        "signal_processor.adapters.kinesis_source.RetentionGapError: shard s-1 of stream s was "
        "last read up to 2026-11-20T00:00:00+00:00 (...)\n\tat org.apache.spark.Foo(Foo.scala:1)"
    )
    assert plain_error(RuntimeError(java)) == (
        "shard s-1 of stream s was last read up to 2026-11-20T00:00:00+00:00 (...)"
    )
    assert plain_error(RuntimeError("first line\nsecond")) == "first line"
