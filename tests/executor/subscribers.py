"""Helpers of the event subscription tests: settings with quick retries, subscribing, making
ticket events, reading what a receiver got, and the order and once-only checks."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from libs import signing
from libs.contracts.deliveries import EventDelivery
from libs.events.envelope import Envelope
from libs.events.testing import eventually
from tests.executor.conftest import FAST
from tests.executor.receiver import Receiver
from tests.executor.stack import Stack
from tests.tickets.support import ADMIN, OPERATOR

SECRET = "subscriber-s3cret"
DELIVERY = {
    **FAST,
    "delivery_timeout_s": 2.0,
    "delivery_max_attempts": 30,
    "delivery_retry_base_s": 0.05,
    "delivery_retry_cap_s": 0.3,
    "executor_lease_grace_s": 0.5,
}
"""A delivery retried within a fraction of a second, 30 times (about 8 s) before it is
dead-lettered; a sender that vanished is taken over 2.5 s after its claim."""


@dataclass(frozen=True)
class Got:
    """One request a receiver got, parsed."""

    delivery_id: str
    event_type: str
    status: int
    event: EventDelivery
    raw: bytes
    signature: str | None


def got(receiver: Receiver) -> list[Got]:
    return [
        Got(
            delivery_id=r.headers["x-opsledger-delivery"],
            event_type=r.headers["x-opsledger-event"],
            status=r.status,
            event=EventDelivery.model_validate_json(r.body),
            raw=r.body,
            signature=r.headers.get("x-opsledger-signature"),
        )
        for r in receiver.received
    ]


async def subscribe(stack: Stack, url: str, events: list[str], **extra: Any) -> str:
    body = {"name": "subscriber", "url": url, "secret": SECRET, "events": events, **extra}
    created = await stack.call("webhooks.create", body, by=ADMIN)
    return str(created["id"])


async def busy_tickets(stack: Stack, count: int, *, tags: int = 2) -> list[str]:
    """`count` tickets, each created, then tagged `tags` times and commented on publicly."""
    keys = []
    for _ in range(count):
        key = await stack.ticket()
        keys.append(key)
        for n in range(tags):
            body = {"key": key, "tag": f"t{n}"}
            await stack.desk.call("tickets.add_tag", body, by=OPERATOR)
        await stack.desk.call("tickets.comment", {"key": key, "body": "on it"}, by=OPERATOR)
    return keys


async def ticket_events(stack: Stack, keys: list[str]) -> list[Envelope]:
    """Every event of these tickets' streams, as the store holds them."""
    found: list[Envelope] = []
    for key in keys:
        found += await stack.deps.store.read_stream(f"ticket-{key}")
    return found


async def deliveries(stack: Stack, webhook_id: str, **query: Any) -> list[dict[str, Any]]:
    """Every delivery of the endpoint, newest first, page by page."""
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        body = {"id": webhook_id, **query, **({"cursor": cursor} if cursor else {})}
        page = await stack.call("webhooks.deliveries", body, by=ADMIN)
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items


async def all_delivered(
    stack: Stack, webhook_id: str, count: int, *, timeout: float = 30.0
) -> list[dict[str, Any]]:
    """The endpoint's deliveries once `count` of them are delivered."""

    async def probe() -> list[dict[str, Any]]:
        return await deliveries(stack, webhook_id, state="delivered")

    await eventually(probe, until=lambda d: len(d) >= count, timeout=timeout, interval=0.1)
    return await deliveries(stack, webhook_id)


def assert_each_event_once(received: list[Got], expected: list[Envelope]) -> None:
    """Every expected event succeeded exactly once, under one delivery id of its own (retries
    of it carry the same id), and nothing else was sent."""
    succeeded = [g for g in received if 200 <= g.status < 300]
    assert sorted(str(g.event.id) for g in succeeded) == sorted(str(e.id) for e in expected)
    ids: dict[str, set[str]] = defaultdict(set)
    for g in received:
        ids[str(g.event.id)].add(g.delivery_id)
    assert all(len(d) == 1 for d in ids.values()), ids
    assert len({g.delivery_id for g in succeeded}) == len(succeeded)


def assert_each_event_through_a_crash(
    before: list[Got], after: list[Got], expected: list[Envelope]
) -> None:
    """Across a kill -9 (`before` it, then `after` a new process took over): every expected
    event succeeded, each always under its one delivery id, nothing else was sent, and each
    process sent in order per stream. An event may succeed once more only when the killed
    process had its answer but died before recording it: at-least-once, which the stable
    delivery id lets a receiver see through."""
    everything = before + after
    assert_each_event_once(_first_successes(everything), expected)
    ids: dict[str, set[str]] = defaultdict(set)
    for g in everything:
        ids[str(g.event.id)].add(g.delivery_id)
    assert all(len(d) == 1 for d in ids.values()), ids
    for side in (before, after):
        succeeded = [str(g.event.id) for g in side if 200 <= g.status < 300]
        assert len(succeeded) == len(set(succeeded)), "an event succeeded twice in one process"
    done_before = {str(g.event.id) for g in before if 200 <= g.status < 300}
    assert_in_order_per_stream(before)
    assert_in_order_per_stream([g for g in after if str(g.event.id) not in done_before])


def _first_successes(received: list[Got]) -> list[Got]:
    """The requests, without the repeats of an event that had already succeeded."""
    seen: set[str] = set()
    kept = []
    for g in received:
        if 200 <= g.status < 300:
            if str(g.event.id) in seen:
                continue
            seen.add(str(g.event.id))
        kept.append(g)
    return kept


def assert_in_order_per_stream(received: list[Got]) -> None:
    """Per stream, in the order the receiver got them: versions never go back, a version is
    sent again only while it has not succeeded, and the next only once it has."""
    streams: dict[str, list[Got]] = defaultdict(list)
    for g in received:
        streams[g.event.stream_id].append(g)
    for stream, items in streams.items():
        versions = [g.event.version for g in items]
        assert versions == sorted(versions), (stream, versions)
        for before, after in pairwise(items):
            succeeded = 200 <= before.status < 300
            assert succeeded == (after.event.version != before.event.version), (stream, versions)


def assert_signed(received: list[Got]) -> None:
    for g in received:
        assert g.signature is not None and signing.verify(SECRET, g.signature, g.raw)
        assert g.event_type == g.event.type
