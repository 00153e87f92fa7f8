"""Event subscriptions through outages: a receiver down for a while gets everything, in order,
once it is back; a delivery whose sender vanished mid-POST (its claim never recorded) is sent
again with the same delivery id once the claim's lease ends, and its stream waits meanwhile."""

from __future__ import annotations

import pytest

from libs.events.settings import Settings
from libs.events.testing import eventually, isolated_system
from services.executor.app import SERVICE as EXECUTOR
from services.executor.subscriptions import lanes
from services.executor.subscriptions.fanout import fan_out_pass
from services.tickets.app import SERVICE as TICKETS
from tests.executor.receiver import Receiver
from tests.executor.stack import Stack, seeded
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


@pytest.fixture
def fast(settings: Settings) -> Settings:
    return settings.model_copy(update=DELIVERY)


async def test_a_receiver_down_for_a_while_gets_everything_once_it_is_back(stack: Stack) -> None:
    receiver = await Receiver().start()
    port = int(receiver.url.rsplit(":", 1)[1])
    hook = await subscribe(stack, receiver.url, ["ticket.*"])
    await receiver.stop()  # down: every attempt is refused a connection
    try:
        keys = await busy_tickets(stack, 3)
        expected = await ticket_events(stack, keys)

        async def failing() -> list[dict[str, object]]:
            return await deliveries(stack, hook, state="pending")

        await eventually(
            failing,
            until=lambda d: any(int(str(x["attempts"])) >= 3 and x["last_error"] for x in d),
        )
        await receiver.start(port=port)  # back
        listed = await all_delivered(stack, hook, len(expected))
    finally:
        await receiver.stop()
    received = got(receiver)
    assert received and all(g.status == 200 for g in received)
    assert_each_event_once(received, expected)
    assert_in_order_per_stream(received)
    assert max(int(d["attempts"]) for d in listed) >= 3
    assert all(d["state"] == "delivered" for d in listed)


async def test_a_vanished_senders_claim_is_sent_again_with_its_id_and_its_stream_waits(
    fast: Settings, database_url: str, nats_url: str, receiver: Receiver
) -> None:
    tickets = isolated_system(fast, database_url, nats_url, services=(TICKETS,), replica="t")
    executor = isolated_system(fast, database_url, nats_url, services=(EXECUTOR,), replica="a")
    async with tickets as deps:
        stack = await seeded(deps)
        async with executor:
            hook = await subscribe(stack, receiver.url, ["ticket.*"])
        # no executor runs: the events wait in the log; a sender claims one lane's head and dies
        keys = await busy_tickets(stack, 2)
        expected = await ticket_events(stack, keys)

        async def fanned_out() -> int:
            await fan_out_pass(deps)
            return int(
                await deps.pool.fetchval(
                    "SELECT count(*) FROM executor.deliveries WHERE webhook_id = $1", hook
                )
            )

        await eventually(fanned_out, until=lambda n: n == len(expected))
        dead = await lanes.claim_next(deps.pool, sender="dead-sender", lease_s=1.5)
        assert dead is not None and dead.attempts == 1
        again = isolated_system(fast, database_url, nats_url, services=(EXECUTOR,), replica="b")
        async with again:
            listed = await all_delivered(stack, hook, len(expected))
    received = got(receiver)
    assert_each_event_once(received, expected)
    assert_in_order_per_stream(received)
    # the first the receiver got of that stream is the claimed delivery, re-sent after the
    # lease: none of the stream's later events overtook it
    mine = [g for g in received if g.event.stream_id == dead.stream_id]
    assert mine[0].delivery_id == str(dead.delivery_id) and mine[0].event.version == dead.version
    taken = next(d for d in listed if d["id"] == str(dead.delivery_id))
    assert taken["attempts"] == 2 and taken["state"] == "delivered"
