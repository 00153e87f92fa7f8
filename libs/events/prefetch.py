"""A consumer's next batch, fetched while it handles the current one.

Fetching after a batch is handled puts a round trip to JetStream, and the wait for the event
loop to run its answer, between every two batches: at 1,000 ev/s that was half of the time
from publish to handler (`bench.foundation`). With the next fetch in flight during the handling,
the next batch is usually there when the current one is acked.

The prefetched messages are delivered, so their ack_wait runs: whoever holds them beats for them
too (`waiting()`). Messages fetched and never handled are given back (nak at once) when the loop
ends, so another replica, or this one after a restart, gets them now instead of after ack_wait.
A fetch cancelled in flight may still have its messages arrive at the subscription: the next
fetch on it takes those first (nats-py drains its pending queue), and otherwise the bus
redelivers them after ack_wait, as it does for any message not acked.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext

log = logging.getLogger(__name__)


class NextBatch:
    """At most one fetch in flight on `sub`; `take()` answers it (or starts one and waits)."""

    def __init__(self, sub: JetStreamContext.PullSubscription, *, batch: int, timeout: float):
        self._sub = sub
        self._batch = batch
        self._timeout = timeout
        self._task: asyncio.Task[list[Msg]] | None = None

    async def _fetch(self) -> list[Msg]:
        try:
            return await self._sub.fetch(self._batch, timeout=self._timeout)
        except (TimeoutError, NatsTimeoutError):
            return []

    def start(self) -> asyncio.Task[list[Msg]]:
        """Begin fetching the next batch, unless a fetch is already in flight."""
        if self._task is None:
            self._task = asyncio.create_task(self._fetch(), name="consumer-prefetch")
        return self._task

    async def take(self) -> list[Msg]:
        """The next batch: the one in flight, or a new fetch; [] when nothing came in time.
        A failure of the fetch (the connection closed) is raised here."""
        task = self.start()
        try:
            return await task
        finally:
            if task.done():
                self._task = None

    def waiting(self) -> list[Msg]:
        """Messages already fetched and not yet taken (their ack_wait is running)."""
        task = self._task
        if task is None or not task.done() or task.cancelled() or task.exception() is not None:
            return []
        return task.result()

    async def close(self) -> None:
        """Stop a fetch in flight and give back what was fetched and not taken."""
        task, self._task = self._task, None
        if task is None:
            return
        if not task.done():
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        if task.cancelled() or task.exception() is not None:
            return
        for msg in task.result():
            try:
                await msg.nak()
            except Exception as exc:  # the bus redelivers it after ack_wait anyway
                log.debug("could not give back a prefetched message: %r", exc)
