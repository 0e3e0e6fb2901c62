"""Replay of a mobile_logs.csv held in S3 (a local moto server): the same records as a local
replay, reads that break part-way resume where they stopped, and a file replaced meanwhile or a
read that keeps breaking ends in one sentence."""

from __future__ import annotations

import http.client
import json
import re
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pandas as pd
import pytest
from botocore.stub import Stubber
from typer.testing import CliRunner

from signal_producer.adapters.sources import (
    S3Location,
    S3Source,
    SourceError,
    make_s3_client,
    parse_s3_url,
)
from signal_producer.cli import app
from signal_producer.settings import get_settings

Rows = list[dict[str, Any]]


@dataclass
class CuttingProxy:
    """An HTTP proxy in front of moto that cuts the first `cuts` body reads of an object short:
    the full Content-Length is announced, the `keep` fraction of the bytes is sent, the
    connection is closed."""

    upstream: str
    cuts: int = 0
    keep: float = 0.5
    on_cut: Callable[[], None] | None = None
    gets: list[dict[str, str | None]] = field(default_factory=list)
    url: str = ""

    def serve(self) -> Iterator[CuttingProxy]:
        proxy = self
        target = urlsplit(self.upstream)

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                upstream = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                upstream.request(self.command, self.path, body=body, headers=headers)
                response = upstream.getresponse()
                data = response.read()
                upstream.close()
                ranged = self.headers.get("Range")
                # the header read is a GET of the first 64 KiB; every other GET reads the body
                is_body_read = self.command == "GET" and ranged != "bytes=0-65535"
                if self.command == "GET":
                    proxy.gets.append({"range": ranged, "if_match": self.headers.get("If-Match")})
                cut = is_body_read and response.status in (200, 206) and proxy.cuts > 0
                self.send_response(response.status)
                for name, value in response.getheaders():
                    if name.lower() not in ("connection", "transfer-encoding", "date", "server"):
                        self.send_header(name, value)
                self.send_header("Connection", "close")
                self.end_headers()
                if self.command == "HEAD":
                    return
                if not cut:
                    self.wfile.write(data)
                    return
                proxy.cuts -= 1
                self.wfile.write(data[: int(len(data) * proxy.keep)])
                self.wfile.flush()
                if proxy.on_cut is not None:
                    proxy.on_cut()
                self.connection.shutdown(socket.SHUT_RDWR)
                self.close_connection = True

            do_GET = do_PUT = do_HEAD = do_POST = do_DELETE = _forward  # noqa: N815

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{server.server_address[1]}"
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            server.shutdown()
            server.server_close()


@pytest.fixture
def cutting_proxy(moto_endpoint_url: str) -> Iterator[CuttingProxy]:
    yield from CuttingProxy(moto_endpoint_url).serve()


def _source(endpoint: str, bucket: str, key: str, **kw: Any) -> S3Source:
    client = make_s3_client(region="us-east-1", endpoint_url=endpoint)
    return S3Source(client, S3Location(bucket, key), where=endpoint, sleep=lambda _s: None, **kw)


def test_s3_urls_name_a_bucket_and_a_key() -> None:
    assert parse_s3_url("s3://b-1/in/mobile_logs.csv") == S3Location("b-1", "in/mobile_logs.csv")
    for bad in ("s3://b-1", "s3://b-1/", "s3:///key.csv", "s3://b-1/in/", "s3:b-1/key.csv"):
        with pytest.raises(SourceError, match="not an S3 object URL; expected s3://BUCKET/KEY"):
            parse_s3_url(bad)


def test_an_s3_object_streams_the_lines_of_the_file(
    s3: Any, bucket: str, moto_endpoint_url: str, sample_csv: Path
) -> None:
    text = sample_csv.read_text("utf-8") + "last,line,without,newline"
    s3.put_object(Bucket=bucket, Key="in/mobile_logs.csv", Body=text.encode("utf-8"))
    source = _source(moto_endpoint_url, bucket, "in/mobile_logs.csv", chunk_bytes=97)
    assert source.name == "mobile_logs.csv"
    assert source.display == f"s3://{bucket}/in/mobile_logs.csv"
    assert source.header_line() == text.splitlines(keepends=True)[0]
    with source.lines() as lines:
        assert list(lines) == text.splitlines(keepends=True)
    assert source.resumed == 0


def test_a_broken_read_resumes_at_the_first_byte_not_handed_out(
    s3: Any, bucket: str, cutting_proxy: CuttingProxy, sample_csv: Path
) -> None:
    text = sample_csv.read_text("utf-8")
    s3.put_object(Bucket=bucket, Key="mobile_logs.csv", Body=text.encode("utf-8"))
    etag = s3.head_object(Bucket=bucket, Key="mobile_logs.csv")["ETag"]
    cutting_proxy.cuts = 2
    source = _source(cutting_proxy.url, bucket, "mobile_logs.csv", chunk_bytes=256)
    with source.lines() as lines:
        got = list(lines)
    assert got == text.splitlines(keepends=True)  # nothing lost, nothing twice
    assert source.resumed == 2
    first, second, third = cutting_proxy.gets
    assert first == {"range": None, "if_match": None}
    # each resumed GET starts at the end of the last whole line handed out, pinned to the ETag
    handed_out = len(text.encode("utf-8")) // 2
    resumed_at = text.encode("utf-8")[:handed_out].rindex(b"\n") + 1
    assert second == {"range": f"bytes={resumed_at}-", "if_match": etag}
    assert third["if_match"] == etag
    assert third["range"] is not None
    assert int(third["range"][6:-1]) > resumed_at


def test_a_read_that_keeps_breaking_ends_in_one_sentence(
    s3: Any, bucket: str, cutting_proxy: CuttingProxy, sample_csv: Path
) -> None:
    s3.put_object(Bucket=bucket, Key="mobile_logs.csv", Body=sample_csv.read_bytes())
    cutting_proxy.cuts, cutting_proxy.keep = 100, 0.0  # no byte gets through
    source = _source(cutting_proxy.url, bucket, "mobile_logs.csv", attempts=3)
    with source.lines() as lines, pytest.raises(SourceError) as failure:
        for _ in lines:
            pass
    message = str(failure.value)
    assert f"reading s3://{bucket}/mobile_logs.csv broke 3 times in a row at byte" in message
    assert "replay it again" in message
    assert "\n" not in message
    assert len(cutting_proxy.gets) == 3


def test_a_file_replaced_during_the_read_is_not_mixed_with_the_new_one(
    s3: Any, bucket: str, cutting_proxy: CuttingProxy, sample_csv: Path
) -> None:
    s3.put_object(Bucket=bucket, Key="mobile_logs.csv", Body=sample_csv.read_bytes())
    cutting_proxy.cuts = 1
    cutting_proxy.on_cut = lambda: s3.put_object(
        Bucket=bucket, Key="mobile_logs.csv", Body=b"hour,lat\n"
    )
    source = _source(cutting_proxy.url, bucket, "mobile_logs.csv")
    with source.lines() as lines, pytest.raises(SourceError, match="was replaced while"):
        list(lines)


def test_an_empty_object_has_an_empty_header(s3: Any, bucket: str, moto_endpoint_url: str) -> None:
    s3.put_object(Bucket=bucket, Key="empty.csv", Body=b"")
    assert _source(moto_endpoint_url, bucket, "empty.csv").header_line() == ""


def _replay(source: str, stream: str, kinesis_endpoint_url: str, tmp_path: Path) -> Any:
    return CliRunner().invoke(
        app,
        [
            "replay", source, "--base-date", "2026-01-15", "--stream", stream,
            "--endpoint-url", kinesis_endpoint_url,
            "--dead-letter", str(tmp_path / f"dead-{stream}.jsonl"), "--no-progress",
        ],
    )  # fmt: skip


@pytest.mark.usefixtures("s3_env")
def test_cli_replay_from_s3_sends_what_a_local_replay_sends(
    s3: Any,
    bucket: str,
    make_stream: Callable[..., str],
    kinesis_endpoint_url: str,
    read_stream: Callable[[str], Rows],
    sample_csv: Path,
    tmp_path: Path,
) -> None:
    lines = sample_csv.read_text("utf-8").splitlines()
    broken = [*lines[:3], lines[3].replace(",IN_SERVICE,", ",SOMETIMES,"), *lines[4:]]
    local = tmp_path / "mobile_logs.csv"
    local.write_text("\n".join(broken) + "\n", "utf-8")
    s3.put_object(Bucket=bucket, Key="uploads/mobile_logs.csv", Body=local.read_bytes())
    from_s3, from_file = make_stream(shards=2), make_stream(shards=2)

    result = _replay(
        f"s3://{bucket}/uploads/mobile_logs.csv", from_s3, kinesis_endpoint_url, tmp_path
    )
    assert result.exit_code == 0, result.output
    assert f"s3://{bucket}/uploads/mobile_logs.csv:4: skipped" in result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["source"] == f"s3://{bucket}/uploads/mobile_logs.csv"
    assert (summary["rows"], summary["bad_rows"], summary["sent"]) == (200, 1, 199)

    assert _replay(str(local), from_file, kinesis_endpoint_url, tmp_path).exit_code == 0
    # same base name, same rows: the same events with the same ids (repeats dedup downstream)
    events_s3 = sorted(r["data"] for r in read_stream(from_s3))
    assert len(events_s3) == 199
    assert events_s3 == sorted(r["data"] for r in read_stream(from_file))


@pytest.mark.usefixtures("s3_env")
@pytest.mark.parametrize(
    ("key", "body", "needles"),
    [
        ("absent.csv", None, ["absent.csv does not exist at http://127.0.0.1:"]),
        ("empty.csv", b"", ["empty.csv is empty: expected a mobile_logs.csv header"]),
        ("other.csv", b"a,b\n1,2\n", ["other.csv is not a mobile_logs.csv: missing column(s)"]),
        ("latin1.csv", "hour,café\n".encode("latin-1"), ["latin1.csv is not UTF-8 text"]),
    ],
)
def test_cli_replay_of_a_bad_s3_object_fails_in_one_sentence_before_sending(
    s3: Any,
    bucket: str,
    key: str,
    body: bytes | None,
    needles: list[str],
    make_stream: Callable[..., str],
    kinesis_endpoint_url: str,
    read_stream: Callable[[str], Rows],
    tmp_path: Path,
) -> None:
    if body is not None:
        s3.put_object(Bucket=bucket, Key=key, Body=body)
    stream = make_stream()
    result = _replay(f"s3://{bucket}/{key}", stream, kinesis_endpoint_url, tmp_path)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    for needle in needles:
        assert needle in lines[0]
    assert read_stream(stream) == []


@pytest.mark.usefixtures("s3_env")
def test_cli_replay_from_a_missing_bucket_or_a_bad_url(
    kinesis_endpoint_url: str, tmp_path: Path
) -> None:
    missing = _replay("s3://no-such-bucket-xyz/in.csv", "s", kinesis_endpoint_url, tmp_path)
    assert missing.exit_code == 2
    assert "error: bucket 'no-such-bucket-xyz' does not exist at" in missing.stderr
    bad = _replay("s3://only-a-bucket", "s", kinesis_endpoint_url, tmp_path)
    assert bad.exit_code == 2
    assert "is not an S3 object URL; expected s3://BUCKET/KEY.csv" in bad.stderr


def test_cli_replay_of_a_file_replaced_mid_read_sends_what_it_read_and_says_so(
    s3: Any,
    bucket: str,
    cutting_proxy: CuttingProxy,
    make_stream: Callable[..., str],
    kinesis_endpoint_url: str,
    read_stream: Callable[[str], Rows],
    sample_csv: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    s3.put_object(Bucket=bucket, Key="mobile_logs.csv", Body=sample_csv.read_bytes())
    cutting_proxy.cuts = 1
    cutting_proxy.on_cut = lambda: s3.put_object(
        Bucket=bucket, Key="mobile_logs.csv", Body=sample_csv.read_bytes() + b"\n"
    )
    monkeypatch.setenv("SIGNAL_PRODUCER_S3_ENDPOINT_URL", cutting_proxy.url)
    get_settings.cache_clear()
    stream = make_stream()
    try:
        result = _replay(f"s3://{bucket}/mobile_logs.csv", stream, kinesis_endpoint_url, tmp_path)
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 2, result.output
    # the resume attempt is logged (JSON lines); the failure itself is one sentence
    errors = [line for line in result.stderr.splitlines() if not line.startswith("{")]
    assert len(errors) == 1, result.stderr
    assert errors[0].startswith(f"error: s3://{bucket}/mobile_logs.csv was replaced while")
    counted = re.search(r"\((\d+) row\(s\) had been read\)$", errors[0])
    assert counted is not None, errors[0]
    read = int(counted.group(1))
    # about half the file got through before the cut: every row read is on the stream
    assert 0 < read < 200
    sent = [json.loads(r["data"]) for r in read_stream(stream)]
    expected = pd.read_csv(sample_csv, dtype={"postal_code": str}).head(read)
    assert sorted(e["event_time"] for e in sent) == sorted(
        f"2026-01-15T{hour}Z" for hour in expected["hour"]
    )


@pytest.mark.parametrize(
    ("code", "status", "needle"),
    [
        ("AccessDenied", 403, "access denied to s3://b-1/in.csv (Access Denied): either it does"),
        ("InvalidAccessKeyId", 403, "rejected the AWS credentials (InvalidAccessKeyId)"),
        ("SlowDown", 503, "refused GetObject of s3://b-1/in.csv: SlowDown"),
    ],
)
def test_refusals_s3_answers_become_one_sentence(code: str, status: int, needle: str) -> None:
    # moto grants everything: AWS's refusals are played back by botocore's Stubber
    client = make_s3_client(region="us-east-1", endpoint_url=None)
    with Stubber(client) as stub:
        stub.add_client_error(
            "get_object",
            service_error_code=code,
            service_message="Access Denied" if code == "AccessDenied" else code,
            http_status_code=status,
        )
        source = S3Source(client, S3Location("b-1", "in.csv"), where="S3 in us-east-1")
        with pytest.raises(SourceError) as failure:
            source.header_line()
    assert needle in str(failure.value)
