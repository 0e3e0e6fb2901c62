"""A Glue endpoint on 127.0.0.1 that answers with queued failures, then success: botocore's
real retry and error handling run against it (moto cannot fail on demand)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class FlakyGlue:
    """Answers each call with `failures` (status, error code) in turn, then GetDatabase's
    success; `requests` records the X-Amz-Target of every call received."""

    failures: list[tuple[int, str]] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)


@contextmanager
def serve_flaky_glue() -> Iterator[tuple[FlakyGlue, str]]:
    """(state, endpoint URL) of a served FlakyGlue; stopped on exit."""
    state = FlakyGlue()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            state.requests.append(self.headers.get("X-Amz-Target", ""))
            if state.failures:
                status, code = state.failures.pop(0)
                body: dict[str, object] = {"__type": code, "Message": f"{code} on purpose"}
            else:
                status, body = 200, {"Database": {"Name": "signal"}}
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/x-amz-json-1.1")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
