"""Outgoing HTTP reaches only public addresses unless allowed, decided on the resolved address,
for every redirect hop; tests talk to their own loopback server, allowed by the policy."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from libs.outbound import OutboundPolicy, OutboundRefused, client

Answer = Callable[[str], bytes]


def _ok(_: str) -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"


def _redirect_to(location: str) -> Answer:
    def answer(_: str) -> bytes:
        return (
            f"HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\n"
            "Connection: close\r\n\r\n"
        ).encode()

    return answer


@contextlib.asynccontextmanager
async def http_server(
    answer: Answer, host: str = "127.0.0.1"
) -> AsyncIterator[tuple[int, list[str]]]:
    """A one-line HTTP server: records each request line, answers with `answer(line)`."""
    seen: list[str] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        line = head.split(b"\r\n", 1)[0].decode()
        seen.append(line)
        writer.write(answer(line))
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, host, 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield port, seen
    finally:
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/",
        "http://localhost:9/",
        "http://[::1]:9/",
        "http://[::ffff:127.0.0.1]:9/",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.1.2.3/",
        "http://192.168.0.1/",
        "http://100.64.0.1/",
        "http://0.0.0.0:9/",
        "http://224.0.0.1/",
    ],
)
async def test_non_public_targets_are_refused_before_connecting(url: str) -> None:
    async with client(OutboundPolicy()) as http:
        with pytest.raises(OutboundRefused, match="not a public address"):
            await http.get(url)


async def test_an_allowed_loopback_server_is_reached() -> None:
    async with (
        http_server(_ok) as (port, seen),
        client(OutboundPolicy.parse("127.0.0.1/32")) as http,
    ):
        response = await http.post(f"http://127.0.0.1:{port}/hook", content=b"{}")
    assert response.status_code == 200 and response.text == "ok"
    assert seen == ["POST /hook HTTP/1.1"]


async def test_an_allowed_host_name_is_reached_on_the_address_it_resolves_to() -> None:
    async with http_server(_ok) as (port, seen), client(OutboundPolicy.parse("localhost")) as http:
        response = await http.get(f"http://localhost:{port}/x")
    assert response.status_code == 200
    assert seen == ["GET /x HTTP/1.1"]


async def test_a_redirect_to_a_target_not_allowed_is_refused() -> None:
    # 127.0.0.1 is allowed; the redirect goes to 127.0.0.2 (loopback too, not allowed)
    async with contextlib.AsyncExitStack() as stack:
        inner_port, inner_seen = await stack.enter_async_context(http_server(_ok))
        away = _redirect_to(f"http://127.0.0.2:{inner_port}/")
        port, seen = await stack.enter_async_context(http_server(away))
        http = await stack.enter_async_context(client(OutboundPolicy.parse("127.0.0.1")))
        with pytest.raises(OutboundRefused, match=r"127\.0\.0\.2"):
            await http.get(f"http://127.0.0.1:{port}/start")
    assert seen == ["GET /start HTTP/1.1"]
    assert inner_seen == []


async def test_a_redirect_to_an_allowed_target_is_followed() -> None:
    async with contextlib.AsyncExitStack() as stack:
        inner_port, inner_seen = await stack.enter_async_context(http_server(_ok))
        onward = _redirect_to(f"http://127.0.0.1:{inner_port}/end")
        port, _ = await stack.enter_async_context(http_server(onward))
        http = await stack.enter_async_context(client(OutboundPolicy.parse("127.0.0.0/8")))
        response = await http.get(f"http://127.0.0.1:{port}/start")
    assert response.status_code == 200
    assert inner_seen == ["GET /end HTTP/1.1"]


async def test_other_schemes_are_refused() -> None:
    async with client(OutboundPolicy.parse("127.0.0.0/8")) as http:
        with pytest.raises(httpx.UnsupportedProtocol):
            await http.get("file:///etc/passwd")


def test_the_allow_list_takes_hosts_and_networks_and_refuses_nonsense() -> None:
    policy = OutboundPolicy.parse(" 10.0.0.0/8, Hooks.Internal. ,127.0.0.1,,")
    assert policy.hosts == frozenset({"hooks.internal"})
    assert [str(n) for n in policy.networks] == ["10.0.0.0/8", "127.0.0.1/32"]
    with pytest.raises(ValueError, match="neither a host name nor a CIDR"):
        OutboundPolicy.parse("http://evil.example/")
