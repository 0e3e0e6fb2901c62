"""Expected failures of `signal-producer`: one plain sentence on stderr, a non-zero exit, no
traceback and nothing sent. Each case runs the real command in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from signal_local.endpoints import free_port

EXIT_FATAL = 2


def _run(
    args: list[str], *, env: dict[str, str] | None = None, inherit: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run the CLI; `env` is added to this process's environment (or replaces it)."""
    base = {
        **(os.environ if inherit else {}),
        "PYTHONPATH": os.pathsep.join(p for p in sys.path if p),
        "COLUMNS": "200",
        **(env or {}),
    }
    return subprocess.run(
        [sys.executable, "-m", "signal_producer.cli", *args],
        env=base,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _assert_one_sentence(result: subprocess.CompletedProcess[str], *needles: str) -> str:
    assert result.returncode == EXIT_FATAL, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    line = lines[0]
    assert line.startswith("error: ")
    for needle in needles:
        assert needle in line, line
    return line


def test_replay_of_a_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.csv"
    _assert_one_sentence(_run(["replay", str(missing), "--no-progress"]), str(missing), "exist")


def test_replay_of_a_csv_without_the_legacy_header_names_the_missing_columns(
    tmp_path: Path,
) -> None:
    bad = tmp_path / "other.csv"
    bad.write_text("hour,lat,long,signal,speed\n08:00:01,40.4,-3.7,-80,0\n", "utf-8")
    line = _assert_one_sentence(
        _run(["replay", str(bad), "--no-progress"]), "not a mobile_logs.csv"
    )
    for column in ("network", "operator", "status", "precission", "provider", "postal_code"):
        assert column in line
    assert "missing column(s) network, operator, status, precission, provider" in line


def test_sending_to_a_stream_that_does_not_exist(
    kinesis_endpoint_url: str, sample_csv: Path, tmp_path: Path
) -> None:
    result = _run(
        [
            "replay",
            str(sample_csv),
            "--stream",
            "no-such-stream",
            "--endpoint-url",
            kinesis_endpoint_url,
            "--dead-letter",
            str(tmp_path / "dead.jsonl"),
            "--no-progress",
        ]
    )
    _assert_one_sentence(result, "'no-such-stream' does not exist", kinesis_endpoint_url)
    assert not (tmp_path / "dead.jsonl").exists()


def test_sending_to_an_unreachable_endpoint(tmp_path: Path) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"
    result = _run(
        [
            "generate",
            "--events",
            "10",
            "--endpoint-url",
            endpoint,
            "--dead-letter",
            str(tmp_path / "dead.jsonl"),
            "--no-progress",
        ]
    )
    _assert_one_sentence(result, "cannot reach", endpoint)
    assert not (tmp_path / "dead.jsonl").exists()


def _without_credentials(tmp_path: Path) -> dict[str, str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("AWS_") or name == "AWS_DEFAULT_REGION"
    }
    env.update(
        {
            "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
            "AWS_CONFIG_FILE": str(tmp_path / "none"),
            "AWS_EC2_METADATA_DISABLED": "true",
        }
    )
    return env


def test_sending_without_credentials(kinesis_endpoint_url: str, tmp_path: Path) -> None:
    result = _run(
        ["generate", "--events", "10", "--endpoint-url", kinesis_endpoint_url, "--no-progress"],
        env=_without_credentials(tmp_path),
        inherit=False,
    )
    _assert_one_sentence(result, "no AWS credentials")


def test_sending_with_a_profile_that_does_not_exist(
    kinesis_endpoint_url: str, tmp_path: Path
) -> None:
    result = _run(
        ["generate", "--events", "10", "--endpoint-url", kinesis_endpoint_url, "--no-progress"],
        env={**_without_credentials(tmp_path), "AWS_PROFILE": "nosuch"},
        inherit=False,
    )
    _assert_one_sentence(result, "AWS profile 'nosuch' is not configured")


@pytest.fixture
def rejecting_kinesis() -> Iterator[Callable[[], list[str]]]:
    """An endpoint answering every call as Kinesis does for an unknown access key."""
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            seen.append(self.headers.get("X-Amz-Target", ""))
            body = json.dumps(
                {
                    "__type": "UnrecognizedClientException",
                    "message": "The security token included in the request is invalid.",
                }
            ).encode()
            self.send_response(400)
            self.send_header("Content-Type", "application/x-amz-json-1.1")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    server.url = f"http://127.0.0.1:{server.server_address[1]}"  # type: ignore[attr-defined]
    try:
        yield lambda: [server.url, *seen]  # type: ignore[attr-defined]
    finally:
        server.shutdown()
        server.server_close()


def test_sending_with_credentials_aws_rejects(
    rejecting_kinesis: Callable[[], list[str]], tmp_path: Path
) -> None:
    endpoint = rejecting_kinesis()[0]
    result = _run(
        [
            "generate",
            "--events",
            "10",
            "--endpoint-url",
            endpoint,
            "--dead-letter",
            str(tmp_path / "dead.jsonl"),
            "--no-progress",
        ],
        env={"AWS_ACCESS_KEY_ID": "AKIAWRONG", "AWS_SECRET_ACCESS_KEY": "wrong"},
    )
    _assert_one_sentence(result, "rejected the AWS credentials", "UnrecognizedClientException")
    assert rejecting_kinesis()[1:] == ["Kinesis_20131202.DescribeStreamSummary"]
    assert not (tmp_path / "dead.jsonl").exists()


def test_sample_csv_into_a_missing_directory(tmp_path: Path) -> None:
    target = tmp_path / "no" / "such" / "dir.csv"
    _assert_one_sentence(_run(["sample-csv", str(target)]), "cannot write", str(target))
