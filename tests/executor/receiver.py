"""A local HTTP endpoint for the webhook tests: records every request and answers with the
statuses it is told to (the last one for every later request), or holds a request open."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int = 0
    """What it was answered (0: not answered, e.g. held)."""


@dataclass
class Receiver:
    statuses: list[int] = field(default_factory=lambda: [200])
    hold_first: bool = False
    delay_s: float = 0.0
    """Answer every request this late."""
    """Never answer the first request (the caller is killed meanwhile)."""
    received: list[Received] = field(default_factory=list)
    accepts: Callable[[bytes], bool] | None = None
    """When set, a body it refuses is answered 400, as the real service refuses a bad payload."""
    _server: asyncio.Server | None = None
    _held: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the receiver is not started")
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def start(self, port: int = 0) -> Receiver:
        """Listen (on `port`: the same one again, to come back after `stop`)."""
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", port)
        return self

    async def stop(self) -> None:
        self._held.set()
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            path = lines[0].split(" ")[1]
            headers = {}
            for line in lines[1:]:
                if ":" in line:
                    name, value = line.split(":", 1)
                    headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            got = Received(path, headers, body)
            self.received.append(got)
            if self.hold_first and len(self.received) == 1:
                await self._held.wait()
                return
            if self.delay_s:
                await asyncio.sleep(self.delay_s)
            index = min(len(self.received) - 1, len(self.statuses) - 1)
            status = self.statuses[index]
            if self.accepts is not None and not self.accepts(body):
                status = 400
            got.status = status
            writer.write(
                f"HTTP/1.1 {status} X\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok".encode()
            )
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
