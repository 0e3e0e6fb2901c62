"""A minimal HTTP/1.1 keep-alive GET client over asyncio streams, for the benchmark's own load.

Only what the benchmark needs: GET with headers, Content-Length or chunked bodies, reconnects
after `Connection: close` or a broken connection, and an optional local address (a second
loopback address, 127.0.0.2, lets one client be a different caller to per-address limits while
every byte still goes to 127.0.0.1).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass


@dataclass(frozen=True)
class Reply:
    """One response: status, headers (lower-case names) and body."""

    status: int
    headers: dict[str, str]
    body: bytes


class Connection:
    """One keep-alive connection to 127.0.0.1:port, opened on first use and after a close."""

    def __init__(self, port: int, *, local_host: str | None = None) -> None:
        self.port, self.local_host = port, local_host
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def get(self, path: str, headers: dict[str, str] | None = None) -> Reply:
        """GET `path`; a broken connection raises (and the next call reconnects)."""
        if self._streams is None:
            local = (self.local_host, 0) if self.local_host else None
            self._streams = await asyncio.open_connection("127.0.0.1", self.port, local_addr=local)
        reader, writer = self._streams
        try:
            lines = [f"GET {path} HTTP/1.1", "Host: 127.0.0.1"]
            lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
            writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
            await writer.drain()
            reply = await _read_reply(reader)
        except BaseException:
            self.close()
            raise
        if reply.headers.get("connection", "").lower() == "close":
            self.close()
        return reply

    def close(self) -> None:
        """Close the connection (the next `get` opens a new one)."""
        if self._streams is not None:
            self._streams[1].close()
            self._streams = None


async def _read_reply(reader: asyncio.StreamReader) -> Reply:
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    status = int(status_line.split(" ", 2)[1])
    headers: dict[str, str] = {}
    for line in header_lines:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        chunks = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")  # no trailers from uvicorn: the final CRLF
                break
            chunks.append(await reader.readexactly(size))
            await reader.readexactly(2)
        return Reply(status, headers, b"".join(chunks))
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return Reply(status, headers, body)
