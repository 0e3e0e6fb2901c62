"""A small local webhook receiver: verifies X-Signal-Signature and logs each request as a JSON
line (`python -m signal_api.alerts.receiver --port P --secret S --log FILE`).

The local stack uses it where Alertmanager is not installed. It answers 204 to a verified
request, 401 to a bad signature or a timestamp outside the tolerance, 409 to a replay (a
signature it accepted within the tolerance), and, with `--fail-first N`, `--fail-status` to
its first N requests (to watch the notifier's retries and dead letters).
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from signal_api.alerts.delivery import (
    KEY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    SignatureError,
    verify_signature,
)


class Receiver:
    """What the HTTP handler needs: the secret, the tolerance, the replay memory and the log."""

    def __init__(
        self, secret: str, log: Path, *, tolerance_s: float, fail_first: int, fail_status: int
    ) -> None:
        self.secret = secret
        self.log = log
        self.tolerance_s = tolerance_s
        self.fail_left = fail_first
        self.fail_status = fail_status
        self._seen: dict[str, float] = {}  # accepted signature -> when
        self._lock = threading.Lock()

    def handle(self, headers: Any, body: bytes) -> tuple[int, str]:
        """The status to answer and why; logs the request."""
        now = time.time()
        with self._lock:
            if self.fail_left > 0:
                self.fail_left -= 1
                return self._logged(self.fail_status, "failing on purpose", headers, body, now)
            signature = headers.get(SIGNATURE_HEADER, "")
            try:
                verify_signature(
                    self.secret,
                    headers.get(TIMESTAMP_HEADER, ""),
                    body,
                    signature,
                    now=now,
                    tolerance_s=self.tolerance_s,
                )
            except SignatureError as exc:
                return self._logged(401, str(exc), headers, body, now)
            for seen, at in list(self._seen.items()):
                if now - at > 2 * self.tolerance_s:
                    del self._seen[seen]
            if signature in self._seen:
                return self._logged(409, "replay of an accepted request", headers, body, now)
            self._seen[signature] = now
            return self._logged(204, "verified", headers, body, now)

    def _logged(
        self, status: int, reason: str, headers: Any, body: bytes, now: float
    ) -> tuple[int, str]:
        try:
            payload: Any = json.loads(body)
        except ValueError:
            payload = body.decode(errors="replace")
        line = {
            "received_at": now,
            "status": status,
            "verified": status == 204,
            "reason": reason,
            "key": headers.get(KEY_HEADER),
            "timestamp": headers.get(TIMESTAMP_HEADER),
            "body": payload,
        }
        with self.log.open("a") as handle:
            handle.write(json.dumps(line, sort_keys=True) + "\n")
        return status, reason


def make_server(receiver: Receiver, host: str, port: int) -> ThreadingHTTPServer:
    """An HTTP server on host:port that hands every POST to `receiver`."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            status, reason = receiver.handle(self.headers, body)
            payload = json.dumps({"status": status, "reason": reason}).encode()
            self.send_response(status)
            if status == 204:
                self.end_headers()
                return
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # the JSON log is the record

    return ThreadingHTTPServer((host, port), Handler)


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the options and serve until interrupted."""
    parser = argparse.ArgumentParser(prog="signal_api.alerts.receiver", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--secret", required=True, help="the notifier's webhook secret")
    parser.add_argument("--log", type=Path, required=True, help="JSON lines file to append to")
    parser.add_argument("--tolerance", type=float, default=300.0, help="timestamp tolerance, s")
    parser.add_argument("--fail-first", type=int, default=0, help="answer this many with an error")
    parser.add_argument("--fail-status", type=int, default=503)
    args = parser.parse_args(argv)
    receiver = Receiver(
        args.secret,
        args.log,
        tolerance_s=args.tolerance,
        fail_first=args.fail_first,
        fail_status=args.fail_status,
    )
    server = make_server(receiver, args.host, args.port)
    print(f"receiver listening on http://{args.host}:{server.server_port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
