"""Request bodies over a size limit are refused with 413 before they are read whole (a pure ASGI
middleware): a declared Content-Length over the limit at once, without reading any of it, and a
streamed (chunked) body as soon as its running total passes the limit.

The limit is `Settings.max_body_bytes` (1 MiB by default); a route that takes uploads may get
a larger one by path prefix (`larger`)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CODE = "PAYLOAD_TOO_LARGE"


class BodyTooLarge(HTTPException):
    """Raised from `receive` once a streamed body passes the limit: FastAPI passes an
    HTTPException raised while it reads the body on to the app's error handlers (our 413 in
    the error shape); one that reaches this middleware is answered here."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is over the limit of {limit} bytes")


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the server refuses a malformed length before we see it
    return None


async def _refuse(send: Send, limit: int) -> None:
    message = f"the request body is over the limit of {limit} bytes"
    body = json.dumps({"error": {"code": CODE, "message": message}}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),  # the unread rest of the body is not ours to drain
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


@dataclass
class BodyLimit:
    """ASGI middleware: at most `max_bytes` of request body (`larger` per path prefix)."""

    app: ASGIApp
    max_bytes: int
    larger: Mapping[str, int] = field(default_factory=dict)

    def limit_for(self, path: str) -> int:
        prefixes = [prefix for prefix in self.larger if path.startswith(prefix)]
        return self.larger[max(prefixes, key=len)] if prefixes else self.max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope.get("path", ""))
        declared = _declared_length(scope)
        if declared is not None and declared > limit:
            await _refuse(send, limit)
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:  # a chunked body, or one longer than it declared
                    raise BodyTooLarge(limit)
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, watched_send)
        except BodyTooLarge:
            if started:
                raise
            await _refuse(send, limit)
