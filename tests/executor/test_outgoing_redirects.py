"""A chat or webhook endpoint that redirects is not followed: httpx would turn the POST into a
GET without its body (302) and the step would be recorded as succeeded although nothing was
posted, or send the signed body to another host (307). No chat service redirects a valid
incoming webhook: a redirect means a moved URL, or a hostile one, and fails the step for good."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from tests.executor.receiver import Receiver
from tests.executor.stack import Stack


@pytest.fixture
async def redirector(receiver: Receiver) -> AsyncIterator[str]:
    async with _redirecting(f"{receiver.url}/moved") as url:
        yield url


@contextlib.asynccontextmanager
async def _redirecting(location: str) -> AsyncIterator[str]:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.decode("latin-1").split("\r\n"):
                if line.lower().startswith("content-length:"):
                    length = int(line.split(":", 1)[1])
            await reader.readexactly(length)
            writer.write(
                f"HTTP/1.1 302 Found\r\nLocation: {location}\r\n"
                "Content-Length: 0\r\nConnection: close\r\n\r\n".encode()
            )
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}/hooks/T0/B0/token"
    server.close()


async def test_a_redirected_chat_post_is_not_a_success(
    stack: Stack, receiver: Receiver, redirector: str
) -> None:
    key = await stack.ticket()
    webhook_id = await stack.webhook(redirector, kind="slack", secret=None)
    action = {"type": "slack", "params": {"webhook_id": webhook_id, "message": "hello"}}
    job = await stack.settled(await stack.queue([action], ticket=key))
    assert job["state"] == "dead_lettered" and job["attempts"] == 1
    assert "HTTP 302, a redirect" in job["last_error"] and receiver.received == []


async def test_a_redirect_to_a_private_address_is_not_followed(stack: Stack) -> None:
    """A chat URL redirecting to the metadata address fails at once, not retried, and says it
    redirected."""
    async with _redirecting("http://169.254.169.254/latest/meta-data/") as url:
        key = await stack.ticket()
        webhook_id = await stack.webhook(url, kind="discord", secret=None)
        action = {"type": "discord", "params": {"webhook_id": webhook_id, "message": "hi"}}
        job = await stack.settled(await stack.queue([action], ticket=key))
    assert job["state"] == "dead_lettered" and job["attempts"] == 1
    assert "a redirect" in job["last_error"]
