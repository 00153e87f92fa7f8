"""Attacks on event subscriptions (services/executor/subscriptions/): receivers that answer 2xx
but never finish their body, an endpoint that hangs and the subscribers that wait behind it, and
an endpoint whose operator turns `include_internal` off while an internal comment still waits."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from libs.events.settings import Settings
from libs.events.testing import eventually
from libs.outbound import OutboundPolicy
from tests.executor.receiver import Receiver
from tests.executor.stack import Stack
from tests.executor.subscribers import DELIVERY, deliveries, got, subscribe
from tests.tickets.support import ADMIN, OPERATOR


@pytest.fixture
def fast(settings: Settings) -> Settings:
    return settings.model_copy(update={**DELIVERY, "delivery_concurrency": 4})


@dataclass
class RawReceiver:
    """An HTTP endpoint driven byte by byte: `mode` says how it answers every request.

    - "hang": reads the request, never answers.
    - "stalled": answers `200 OK` with Content-Length 100 and sends no body, holding the line.
    - "endless": answers `200 OK`, chunked, and sends 64 KiB chunks until the client leaves.
    """

    mode: str
    requests: list[str] = field(default_factory=list)
    """The X-OpsLedger-Delivery of every request, in arrival order."""
    sent_bytes: int = 0
    _server: asyncio.Server | None = None
    _stop: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}/hook"

    async def start(self) -> RawReceiver:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def stop(self) -> None:
        self._stop.set()
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
            headers = {
                k.strip().lower(): v.strip()
                for k, _, v in (line.partition(":") for line in head.split("\r\n")[1:])
            }
            await reader.readexactly(int(headers.get("content-length", "0")))
            self.requests.append(headers.get("x-opsledger-delivery", ""))
            if self.mode == "hang":
                await self._stop.wait()
                return
            if self.mode == "stalled":
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n")
                await writer.drain()
                await self._stop.wait()
                return
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            chunk = b"x" * 65536
            framed = b"%x\r\n%s\r\n" % (len(chunk), chunk)
            deadline = time.monotonic() + 30
            while not self._stop.is_set() and time.monotonic() < deadline:
                writer.write(framed)
                await writer.drain()
                self.sent_bytes += len(chunk)
                await asyncio.sleep(0.01)
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()


@pytest.fixture
async def raw_endless() -> AsyncIterator[RawReceiver]:
    endpoint = await RawReceiver("endless").start()
    yield endpoint
    await endpoint.stop()


async def state_of(stack: Stack, hook: str) -> list[dict[str, Any]]:
    return await deliveries(stack, hook)


@pytest.mark.parametrize("mode", ["stalled", "endless"])
async def test_a_2xx_whose_body_never_ends_is_a_success_and_is_not_read_to_the_end(
    stack: Stack, mode: str
) -> None:
    """Fixed. The spec: "a 2xx is a success". The sender uses `http.post`, which reads the
    whole answer body into memory before it returns, inside the delivery timeout: a receiver
    that answers `200 OK` at once but then stalls its body (or streams a huge one) has the
    attempt recorded as a timeout, so the SAME event is POSTed again and again (a duplicate per
    attempt, although the receiver accepted the first) and finally dead-lettered, holding its
    stream. With "endless" the sender also buffers everything the receiver sends (unbounded
    memory per in-flight delivery: at LAN speed, gigabytes within the 10 s default timeout).
    Should: decide on the status line, read at most a small bounded part of the body, record
    the delivery as delivered (last_status 200) after one request."""
    raw = await RawReceiver(mode).start()
    try:
        hook = await subscribe(stack, raw.url, ["ticket.created"])
        await stack.ticket()

        async def settled_or_resent() -> tuple[list[dict[str, Any]], int]:
            return await state_of(stack, hook), len(raw.requests)

        listed, requests = await eventually(
            settled_or_resent,
            until=lambda r: r[1] >= 2 or any(d["state"] == "delivered" for d in r[0]),
            timeout=15,
            interval=0.1,
        )
        sent_bytes = raw.sent_bytes
    finally:
        await raw.stop()
    assert requests == 1, (
        f"the receiver accepted with 200 yet got the event {requests} times"
        f"; the sender read {sent_bytes} body bytes"
    )
    assert [(d["state"], d["last_status"]) for d in listed] == [("delivered", 200)], listed
    assert sent_bytes < 1024 * 1024, f"the sender kept reading the body: {sent_bytes} bytes"


async def test_a_hanging_endpoint_with_a_backlog_does_not_starve_other_subscriptions(
    stack: Stack, receiver: Receiver
) -> None:
    """Fixed. One receiver that accepts connections and never answers, with a backlog of
    one event in each of many streams (lanes). The sender claims lane heads globally by
    `next_at` with no fairness between endpoints, each hung claim holding one of the
    `delivery_concurrency` slots for the whole `delivery_timeout_s`: every other subscription's
    new event waits until every older head of the hung endpoint has timed out once, i.e.
    lanes x timeout / concurrency (with the defaults, 1,000 open tickets x 10 s / 8 = 21 min of
    no deliveries to anyone). Should: a healthy subscriber gets its event within a couple of
    delivery timeouts whatever another endpoint does (per-endpoint share of the slots)."""
    hung = await RawReceiver("hang").start()
    try:
        await subscribe(stack, hung.url, ["ticket.created"])
        for _ in range(24):
            await stack.ticket()  # 24 lanes, each head hanging for the whole timeout
        healthy = await subscribe(stack, receiver.url, ["ticket.created"])
        began = time.monotonic()
        await stack.ticket()

        async def delivered() -> list[dict[str, Any]]:
            return await deliveries(stack, healthy, state="delivered")

        await eventually(delivered, timeout=40, interval=0.05)
        waited = time.monotonic() - began
    finally:
        await hung.stop()
    timeout = float(str(DELIVERY["delivery_timeout_s"]))  # 2 s here, 4 sends at a time
    assert waited < 2 * timeout + 1, f"the healthy subscriber waited {waited:.1f} s"


async def test_turning_include_internal_off_stops_internal_comments_that_still_wait(
    stack: Stack, receiver: Receiver
) -> None:
    """Fixed. Spec: "internal comments only to subscriptions that ask for them". An
    endpoint with include_internal=true is down; an internal comment's delivery waits (pending,
    retrying). The admin turns include_internal OFF (e.g. they learn the receiver is a
    customer-facing system). When the receiver comes back, the internal comment is POSTed to
    it anyway: the sender re-checks only that the endpoint still subscribes, never whether it
    still wants that event (matching happened once, at fan-out). Should: a delivery the
    endpoint no longer asks for (internal, or a pattern it dropped) is cancelled, not sent."""
    receiver.statuses = [503]
    hook = await subscribe(stack, receiver.url, ["ticket.commented"], include_internal=True)
    key = await stack.ticket()
    secret_body = "root cause: the admin password is hunter2"
    await stack.desk.call(
        "tickets.comment", {"key": key, "body": secret_body, "internal": True}, by=OPERATOR
    )

    async def retrying() -> list[dict[str, Any]]:
        return await deliveries(stack, hook, state="pending")

    await eventually(retrying, until=lambda d: any(x["attempts"] >= 1 for x in d), timeout=15)
    await stack.call("webhooks.update", {"id": hook, "include_internal": False}, by=ADMIN)
    shown = await stack.call("webhooks.get", {"id": hook}, by=ADMIN)
    assert shown["include_internal"] is False
    receiver.statuses = [200]  # back

    async def drained() -> list[dict[str, Any]]:
        return await deliveries(stack, hook, state="pending")

    await eventually(drained, until=lambda d: not d, timeout=20, interval=0.1)
    accepted = [g for g in got(receiver) if g.status == 200]
    leaked = [g.event.data["body"] for g in accepted if g.event.data.get("internal")]
    assert leaked == [], "an internal comment reached an endpoint that had opted out"


@pytest.mark.parametrize(
    "address",
    ["64:ff9b::a00:1", "64:ff9b::a9fe:a9fe", "2002:a00:1::1", "::a00:1"],
    ids=["nat64-10.0.0.1", "nat64-metadata", "6to4-10.0.0.1", "v4-compatible-10.0.0.1"],
)
def test_an_ipv6_address_embedding_a_private_ipv4_one_is_refused(address: str) -> None:
    """Fixed. The outbound guard judges `ipaddress.is_global` after unmapping only
    ::ffff:0:0/96. A subscription URL (or a name whose AAAA record is) `http://[64:ff9b::a00:1]/`
    embeds 10.0.0.1 in the NAT64 well-known prefix: on an IPv6-only deployment with NAT64 (e.g.
    a cloud NAT gateway, which does translate to private VPC addresses) it reaches 10.0.0.1, or
    169.254.169.254 (instance metadata), past the SSRF guard. 6to4 (2002::/16) and deprecated
    IPv4-compatible (::a.b.c.d) addresses embed one too. Should: judge the embedded IPv4
    address (or refuse these prefixes) unless OPSLEDGER_OUTBOUND_ALLOW lists them."""
    assert OutboundPolicy.parse("").refusal("hooks.example", ipaddress.ip_address(address))
