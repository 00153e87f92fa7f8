"""The bus never drops a reply: one too large for NATS, one that cannot be encoded, or one whose
sending fails becomes an error the caller gets at once (and the log names it), instead of a
caller waiting out its timeout; a request too large to send is a 413."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg

from libs.events.bus import RpcClient, RpcHandler, RpcRequest, RpcServer, connect_nats
from libs.events.envelope import Actor
from libs.events.errors import ServiceError
from libs.events.settings import Settings


async def huge(_: RpcRequest) -> Any:
    return {"blob": "x" * 2_000_000}


async def surrogate(_: RpcRequest) -> Any:
    return {"text": "\ud800"}


async def small(_: RpcRequest) -> Any:
    return {"fine": True}


@pytest.fixture
async def nc(nats_url: str) -> AsyncIterator[NatsClient]:
    client = await connect_nats(nats_url, name="test-reply-too-large")
    yield client
    await client.close()


@pytest.fixture
async def rpc(nc: NatsClient, settings: Settings) -> AsyncIterator[RpcClient]:
    methods: dict[str, RpcHandler] = {"huge": huge, "surrogate": surrogate, "small": small}
    server = RpcServer(nc=nc, settings=settings, service="things", methods=methods)
    await server.start()
    yield RpcClient(nc=nc, settings=settings.model_copy(update={"rpc_timeout_s": 10.0}))
    await server.stop()


async def refused(rpc: RpcClient, method: str, body: dict[str, Any] | None = None) -> ServiceError:
    started = time.monotonic()
    with pytest.raises(ServiceError) as caught:
        await rpc.call("things", method, body, actor=Actor.system())
    assert time.monotonic() - started < 3, "the caller waited for a reply that never came"
    return caught.value


async def test_a_reply_over_the_bus_limit_is_an_error_at_once(
    rpc: RpcClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="libs.events.bus"):
        error = await refused(rpc, "huge")
    assert (error.status, error.code) == (502, "REPLY_TOO_LARGE")
    assert any("over the bus limit" in r.getMessage() for r in caplog.records)


async def test_a_reply_that_cannot_be_encoded_is_an_error_at_once(rpc: RpcClient) -> None:
    error = await refused(rpc, "surrogate")
    assert (error.status, error.code) == (500, "INTERNAL")


async def test_a_reply_whose_sending_fails_is_replaced_by_an_error(
    rpc: RpcClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    respond = Msg.respond
    calls: list[bytes] = []

    async def failing_once(self: Msg, data: bytes) -> None:
        calls.append(data)
        if len(calls) == 1:
            raise ConnectionError("the first send fails")
        await respond(self, data)

    monkeypatch.setattr(Msg, "respond", failing_once)
    error = await refused(rpc, "small")
    assert (error.status, error.code) == (502, "REPLY_FAILED")


async def test_a_request_over_the_bus_limit_is_413(rpc: RpcClient) -> None:
    error = await refused(rpc, "small", {"blob": "x" * 2_000_000})
    assert (error.status, error.code) == (413, "PAYLOAD_TOO_LARGE")


async def test_a_reply_within_the_limit_arrives(rpc: RpcClient) -> None:
    assert await rpc.call("things", "small", actor=Actor.system()) == {"fine": True}
