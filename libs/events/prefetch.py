"""A consumer's next batch, arriving while it handles the current one.

nats-py's `fetch` asks for a batch and waits for it, so a loop of fetch-then-handle puts a round
trip to JetStream, and the wait for the event loop to run its answer, between every two batches;
and a fetch made ahead of time answers with the first message that arrives, leaving the ones
after it for the fetch after that. At 1,000 ev/s that was half the time from publish to handler
(`bench.foundation`).

So the loop keeps one pull request of its own open on its durable consumer (the JetStream API's
`CONSUMER.MSG.NEXT`, answered to an inbox this module subscribes): the bus pushes each message
as it comes, up to the batch, into a buffer here while the loop handles, and `take()` hands over
the whole buffer at once. The request left open at a take lasts AHEAD_S, so a replica stuck on
a slow batch does not hold back what its peers could handle; an idle take waits up to a second
on a request for one message, which ends with it. When a request is used up or ends (`408` at
its expiry, a `409`), the next `take()` asks again; so does it once a request's expiry has passed
without a word from the server (LAPSED_AFTER_S).

Buffered messages are delivered, so their ack_wait runs: the loop beats for them (`waiting()`).
On `close()` the inbox is unsubscribed first and then whatever was buffered and never taken is
given back (nak at once), so another replica, or this one after a restart, gets it now instead
of after ack_wait. A message the server sent after the unsubscribe is redelivered after
ack_wait, as any unacked message is.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time

from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext

log = logging.getLogger(__name__)

JS_API = "$JS.API"
"""The JetStream API prefix (OpsLedger uses no JetStream domain)."""
LAPSED_AFTER_S = 0.005
"""A request is taken as over this long after its expiry, whether or not the server said so:
nats-server 2.9 at times ends a partly answered request at its expiry without its 408, and a
request made before a reconnect may be forgotten. A request still open then only means two are
open for a moment, both answered to this inbox (its end, answered to its own reply subject, no
longer counts)."""
AHEAD_S = 0.1
"""How long the request left open while a batch is handled stays open: what arrives meanwhile
comes with the next take, but a replica stuck on a slow batch holds back only what arrived in
the first AHEAD_S, not everything its idle peers could be handling."""
REFUSED_PAUSE_S = 0.1
"""After a request the server refused (a 409 other than a deleted consumer, such as too many
waiting requests), the next one waits this long, so a refusal is not answered with a spin."""


class ConsumerGone(Exception):
    """The durable consumer is gone or no longer takes this loop's requests (deleted, its
    stream deleted, no JetStream answering, a request limit set on it by hand): the loop ends,
    and the supervisor runs it again, which sets the consumer up as the code declares it."""


class NextBatch:
    """One open pull request on `consumer` of `stream`; `take()` answers what has arrived."""

    def __init__(
        self, nc: NatsClient, *, stream: str, consumer: str, batch: int, timeout: float
    ) -> None:
        self._nc = nc
        self._subject = f"{JS_API}.CONSUMER.MSG.NEXT.{stream}.{consumer}"
        self._batch = batch
        self._timeout = timeout
        self._inbox = nc.new_inbox()
        self._asked = 0
        # the reply subject of the latest request: its end is the one that counts
        self._current = ""
        self._sub: Subscription | None = None
        self._held: list[Msg] = []
        self._owed = 0
        self._open_until = 0.0
        self._arrived = asyncio.Event()
        self._gone: str | None = None
        self._pause_until = 0.0

    async def open(self) -> None:
        self._sub = await self._nc.subscribe(f"{self._inbox}.*", cb=self._on_message)

    async def _on_message(self, msg: Msg) -> None:
        status = JetStreamContext.is_status_msg(msg)
        if status is None:
            self._held.append(msg)
            self._owed = max(0, self._owed - 1)
        elif status == "100":  # an idle heartbeat or flow control: not asked for, not an end
            return
        else:  # 404/408: nothing more on that request; 409/503: it ended for a reason given
            description = (msg.headers or {}).get("Description", "")
            if _consumer_gone(status, description):
                self._gone = f"{status} {description}".strip()
            elif msg.subject != self._current:
                return  # the end of an earlier request, after a later one was made
            elif status not in ("404", "408"):
                log.debug("pull request on %s ended: %s %s", self._subject, status, description)
                self._pause_until = time.monotonic() + REFUSED_PAUSE_S
            self._owed = 0
        self._arrived.set()

    async def _ask(self, expires_s: float, most: int) -> None:
        """Keep a request open for up to `most` messages, within the buffer's room (none while
        one is open)."""
        if self._owed > 0 and time.monotonic() < self._open_until:
            return
        room = min(most, self._batch - len(self._held))
        if room <= 0:
            return
        pause = self._pause_until - time.monotonic()
        if pause > 0:
            await asyncio.sleep(pause)
        request = {"batch": room, "expires": int(expires_s * 1_000_000_000)}
        self._asked += 1
        self._current = f"{self._inbox}.{self._asked}"
        await self._nc.publish(self._subject, json.dumps(request).encode(), reply=self._current)
        self._owed = room
        self._open_until = time.monotonic() + expires_s + LAPSED_AFTER_S

    async def take(self) -> list[Msg]:
        """What has arrived (at most a batch), after waiting up to `timeout` for the first
        message when nothing has; [] when nothing came. The request stays open afterwards."""
        if self._sub is None:
            await self.open()
        deadline = time.monotonic() + self._timeout
        while not self._held:
            self._raise_if_gone()
            self._arrived.clear()
            # idle: wait for the first message only, so no long request outlives this take
            await self._ask(self._timeout, 1)
            now = time.monotonic()
            if now >= deadline:
                return []
            until = min(deadline, max(self._open_until, now + LAPSED_AFTER_S))
            with contextlib.suppress(TimeoutError):  # then ask again, unless past the deadline
                await asyncio.wait_for(self._arrived.wait(), timeout=until - now)
        self._raise_if_gone()
        batch, self._held = self._held[: self._batch], self._held[self._batch :]
        await self._ask(AHEAD_S, self._batch)  # the next batch comes in while this is handled
        return batch

    def _raise_if_gone(self) -> None:
        if self._gone is not None:
            raise ConsumerGone(self._gone)

    def waiting(self) -> list[Msg]:
        """Messages arrived and not yet taken (their ack_wait is running)."""
        return list(self._held)

    async def close(self) -> None:
        """Stop receiving and give back what was buffered and not taken."""
        sub, self._sub = self._sub, None
        if sub is not None:
            try:
                await sub.unsubscribe()
            except Exception as exc:  # a closed connection: nothing more arrives anyway
                log.debug("could not unsubscribe %s: %r", self._inbox, exc)
        held, self._held = self._held, []
        for msg in held:
            try:
                await msg.nak()
            except Exception as exc:  # the bus redelivers it after ack_wait anyway
                log.debug("could not give back a prefetched message: %r", exc)


def _consumer_gone(status: str, description: str) -> bool:
    """409 "Consumer Deleted" (to a request open at the time), 503 (no responders: nats-server
    2.10 and later answer so for a consumer or stream that is not there; 2.9 answers nothing,
    which the loop's own check covers), and a 409 for a request limit the code never sets."""
    said = description.lower()
    return status == "503" or (
        status == "409" and ("deleted" in said or "exceeded maxrequest" in said)
    )
