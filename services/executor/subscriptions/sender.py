"""The sender: claims lane heads (`lanes.py`), POSTs each event to its endpoint and records the
outcome; one per replica, under the supervisor.

The event is read from the store by its stream and version (never from the bus) and sent as
`payload.py` builds it, through `libs.outbound` (its SSRF guard), within
`delivery_timeout_s`, if the endpoint still asks for it (its patterns and include_internal as
they are now): a 2xx status line is a success (the body is never read: a receiver that stalls
or streams it cannot turn an accepted event into a retry); any other answer (a redirect is not
followed), a timeout or a lost connection is a failed attempt, retried with backoff until
`delivery_max_attempts`, then dead-lettered; a target the outbound policy refuses is
dead-lettered at once. It sleeps until a delivery may have become sendable (NOTIFY on
`fanout.CHANNEL`, a finished send of its own) or the next lane head is due, MAX_SLEEP_S at most
in case a notification was lost with its connection."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from collections import Counter
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import urlsplit

import httpx

from libs.events.db import connect
from libs.events.runtime import Deps
from libs.events.wakeups import sleep_until_woken
from libs.outbound import OutboundPolicy, OutboundRefused, answered, client
from services.executor import queries
from services.executor.subscriptions import lanes, payload
from services.executor.subscriptions.cursors import is_subscription
from services.executor.subscriptions.fanout import CHANNEL
from services.executor.subscriptions.matching import Wants, delivers

log = logging.getLogger(__name__)

MAX_SLEEP_S: Final = 2.0
MIN_SLEEP_S: Final = 0.02


def sender_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


@dataclass
class Sender:
    deps: Deps
    name: str = field(default_factory=sender_name)

    def __post_init__(self) -> None:
        s = self.deps.settings
        self.timeout_s = s.delivery_timeout_s
        self.lease_s = s.delivery_timeout_s + s.executor_lease_grace_s
        self.backoff = lanes.Backoff(
            s.delivery_max_attempts, s.delivery_retry_base_s, s.delivery_retry_cap_s
        )
        self.wake = asyncio.Event()
        self.sending = 0
        self.by_endpoint: Counter[str] = Counter()
        self.per_endpoint = max(1, s.delivery_concurrency // 2)
        """In-flight sends one endpoint may hold here while others have work: a hanging
        endpoint with a backlog of lanes takes at most half the slots, and every other
        subscriber keeps the rest. With nobody else waiting it may use all slots but one."""

    def has_spare_slots(self) -> bool:
        return self.sending < self.deps.settings.delivery_concurrency - 1

    def busy_endpoints(self) -> list[str]:
        return [w for w, n in self.by_endpoint.items() if n >= self.per_endpoint]

    async def run(self, stopping: asyncio.Event) -> None:
        """Claim and send until the process stops; a lost LISTEN connection is raised to the
        supervisor (which restarts this; claims in flight are taken over when their lease ends)."""
        settings = self.deps.settings
        if settings.database_url is None:
            raise RuntimeError("the executor needs the database URL to listen for deliveries")
        listener = await connect(settings.database_url, application="opsledger deliveries")
        lost: list[str] = []

        def on_terminated(_: object) -> None:
            lost.append("the LISTEN connection was closed")
            self.wake.set()

        policy = OutboundPolicy.parse(settings.outbound_allow)
        timeout = httpx.Timeout(self.timeout_s, connect=min(5.0, self.timeout_s))
        try:
            listener.add_termination_listener(on_terminated)
            await listener.add_listener(CHANNEL, lambda *_: self.wake.set())
            async with client(policy, timeout=timeout) as http, asyncio.TaskGroup() as group:
                while not stopping.is_set():
                    self.wake.clear()
                    while self.sending < settings.delivery_concurrency:
                        busy = self.busy_endpoints()
                        claim = await lanes.claim_next(
                            self.deps.pool, sender=self.name, lease_s=self.lease_s, busy=busy
                        )
                        if claim is None and busy and self.has_spare_slots():
                            # nobody else waits: a busy endpoint may use the slots left, all
                            # but one, which stays free for the next endpoint that has work
                            claim = await lanes.claim_next(
                                self.deps.pool, sender=self.name, lease_s=self.lease_s
                            )
                        if claim is None:
                            break
                        self.sending += 1
                        self.by_endpoint[claim.webhook_id] += 1
                        group.create_task(self._deliver(claim, http))
                    if lost or listener.is_closed():
                        raise ConnectionError(lost[0] if lost else "the LISTEN connection closed")
                    due = await lanes.next_due_in(self.deps.pool)
                    delay = MAX_SLEEP_S if due is None else max(MIN_SLEEP_S, due)
                    await sleep_until_woken(stopping, self.wake, min(MAX_SLEEP_S, delay))
        finally:
            with contextlib.suppress(Exception):
                await listener.close()

    async def _deliver(self, claim: lanes.Claim, http: httpx.AsyncClient) -> None:
        """One attempt, recorded (a failure to record is raised: the supervisor restarts the
        sender, and the lease hands the delivery to a sender again)."""
        try:
            outcome = await self.attempt(claim, http)
            if isinstance(outcome, lanes.Failed):
                log.warning(
                    "delivery %s of %s@%d to %s, attempt %d: %s",
                    claim.delivery_id, claim.stream_id, claim.version, claim.webhook_id,
                    claim.attempts, outcome.error,
                )  # fmt: skip
            await lanes.record(self.deps.pool, claim, outcome, self.backoff)
        finally:
            self.sending -= 1
            self.by_endpoint[claim.webhook_id] -= 1
            if self.by_endpoint[claim.webhook_id] <= 0:
                del self.by_endpoint[claim.webhook_id]
            self.wake.set()

    async def attempt(self, claim: lanes.Claim, http: httpx.AsyncClient) -> lanes.Outcome:
        """POST the claimed delivery once and say how it went."""
        endpoint = await queries.webhook(self.deps.pool, claim.webhook_id)
        if endpoint is None or not is_subscription(endpoint):
            return lanes.Cancelled("the endpoint no longer subscribes to events")
        found = await self.deps.store.read_stream(
            claim.stream_id, from_version=claim.version, to_version=claim.version
        )
        if not found or found[0].id != claim.event_id:
            return lanes.Failed("the event is not in the store", permanent=True)
        wants = Wants(tuple(endpoint.events or ()), include_internal=endpoint.include_internal)
        if not delivers(wants, found[0], self.deps.store.registry):
            # matched when it was fanned out; the endpoint's patterns or its include_internal
            # have changed since: what it no longer asks for is not sent
            return lanes.Cancelled("the endpoint no longer asks for this event")
        raw = payload.body(found[0], self.deps.store.registry)
        headers = payload.headers(
            event_type=claim.type, delivery_id=claim.delivery_id, raw=raw, secret=endpoint.secret
        )
        host = urlsplit(endpoint.url).hostname or "the endpoint"
        try:
            async with asyncio.timeout(self.timeout_s):
                status = await answered(http, endpoint.url, content=raw, headers=headers)
        except OutboundRefused as exc:
            return lanes.Failed(str(exc), permanent=True)
        except httpx.InvalidURL:
            return lanes.Failed("the endpoint's URL is not valid", permanent=True)
        except TimeoutError:
            return lanes.Failed(f"{host} did not answer within {self.timeout_s:g} s")
        except httpx.HTTPError as exc:
            return lanes.Failed(f"{host}: {type(exc).__name__}: {exc}")
        if 200 <= status < 300:
            return lanes.Delivered(status)
        if 300 <= status < 400:
            error = f"{host} answered HTTP {status}, a redirect (not followed)"
        else:
            error = f"{host} answered HTTP {status}"
        return lanes.Failed(error, status=status)


async def run_sender(deps: Deps, stopping: asyncio.Event) -> None:
    """The executor's event delivery sender (one per replica)."""
    await Sender(deps).run(stopping)
