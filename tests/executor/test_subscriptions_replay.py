"""Replaying a subscription: `webhooks.replay {after}` re-sends every matching event after that
position, in order, as new deliveries; a dead letter holds its stream (the later events wait)
until a replay supersedes it; a replay of a position that holds no event, or of an endpoint
without `events`, is refused, and only admins replay."""

from __future__ import annotations

import asyncio

import pytest

from libs.events.errors import ServiceError
from libs.events.settings import Settings
from libs.events.testing import eventually
from tests.executor.receiver import Receiver
from tests.executor.stack import Stack
from tests.executor.subscribers import (
    DELIVERY,
    all_delivered,
    assert_each_event_once,
    assert_in_order_per_stream,
    busy_tickets,
    deliveries,
    got,
    subscribe,
    ticket_events,
)
from tests.tickets.support import ADMIN, OPERATOR


@pytest.fixture
def fast(settings: Settings) -> Settings:
    return settings.model_copy(update={**DELIVERY, "delivery_max_attempts": 3})


async def test_a_replay_re_sends_every_event_after_the_position_in_order(
    stack: Stack, receiver: Receiver
) -> None:
    hook = await subscribe(stack, receiver.url, ["ticket.*"])
    keys = await busy_tickets(stack, 2)
    events = await ticket_events(stack, keys)
    await all_delivered(stack, hook, len(events))
    first = got(receiver)
    after = min(events, key=lambda e: e.position)
    replayed = await stack.call("webhooks.replay", {"id": hook, "after": after.position}, by=ADMIN)
    assert replayed == {"id": hook, "after": after.position, "superseded": 0, "generation": 1}
    later = [e for e in events if e.position > after.position]
    listed = await all_delivered(stack, hook, len(events) + len(later))
    again = got(receiver)[len(first) :]
    assert_each_event_once(again, later)
    assert_in_order_per_stream(again)
    assert not {g.delivery_id for g in again} & {g.delivery_id for g in first}
    assert sum(d["replay"] for d in listed) == len(later)


async def test_a_dead_letter_holds_its_stream_until_a_replay(
    stack: Stack, receiver: Receiver
) -> None:
    receiver.statuses = [500]
    hook = await subscribe(stack, receiver.url, ["ticket.*"])
    [key] = await busy_tickets(stack, 1)
    events = await ticket_events(stack, [key])

    async def dead() -> list[dict[str, object]]:
        return await deliveries(stack, hook, state="dead_lettered")

    [letter] = await eventually(dead, timeout=20, interval=0.1)
    assert letter["version"] == 1 and letter["attempts"] == 3
    assert letter["last_status"] == 500 and "HTTP 500" in str(letter["last_error"])
    receiver.statuses = [200]  # it works again, but nothing moves: the dead letter holds the lane
    await asyncio.sleep(0.5)
    assert len(receiver.received) == 3
    waiting = await deliveries(stack, hook, state="pending")
    assert len(waiting) == len(events) - 1
    registered = (await stack.deps.store.read_stream(f"webhook-{hook}"))[0]
    replayed = await stack.call(
        "webhooks.replay", {"id": hook, "after": registered.position}, by=ADMIN
    )
    assert replayed["superseded"] == len(events)
    listed = await all_delivered(stack, hook, len(events))
    received = got(receiver)
    assert_each_event_once(received[3:], events)
    assert_in_order_per_stream(received[3:])
    states = sorted(str(d["state"]) for d in listed)
    assert states == ["delivered"] * len(events) + ["superseded"] * len(events)


async def test_bad_replays_are_refused(stack: Stack, receiver: Receiver) -> None:
    hook = await subscribe(stack, receiver.url, ["ticket.*"])
    plain = await stack.call("webhooks.create", {"name": "p", "url": receiver.url}, by=ADMIN)
    for body, by, status, code in (
        ({"id": hook, "after": 10**12}, ADMIN, 422, "INVALID_POSITION"),
        ({"id": hook, "after": -1}, ADMIN, 422, "VALIDATION_ERROR"),
        ({"id": hook}, ADMIN, 422, "VALIDATION_ERROR"),
        ({"id": plain["id"], "after": 0}, ADMIN, 409, "NOT_A_SUBSCRIPTION"),
        ({"id": "wh_0000000000000000", "after": 0}, ADMIN, 404, "NOT_FOUND"),
        ({"id": hook, "after": 0}, OPERATOR, 403, "FORBIDDEN"),
    ):
        with pytest.raises(ServiceError) as caught:
            await stack.call("webhooks.replay", body, by=by)
        assert (caught.value.status, caught.value.code) == (status, code), body
    with pytest.raises(ServiceError) as caught:
        await stack.call("webhooks.deliveries", {"id": hook}, by=OPERATOR)
    assert caught.value.status == 403
