"""The consumer fetches its next batch while it handles the current one (libs/events/prefetch.py),
on real NATS and Postgres: batches come in order, a prefetched batch is kept alive past ack_wait
while a slow batch is handled, and what was prefetched and never handled is given back at once
when the loop stops, not after ack_wait."""

from __future__ import annotations

import asyncio
import time

import nats
import pytest
from nats.aio.msg import Msg

from libs.events import consumer_loop
from libs.events.envelope import Actor, Metadata
from libs.events.prefetch import AHEAD_S, ConsumerGone, NextBatch
from libs.events.settings import Settings
from libs.events.store import NO_STREAM, dump_envelope
from libs.events.testing import eventually, isolated_system
from tests.events_for_tests import Flaky
from tests.faulty_service import FAULTY, attempts, handled
from tests.jetstream_support import durable

META = Metadata(actor=Actor.system(), service="test")


async def test_batches_taken_one_after_another_keep_the_stream_order(
    settings: Settings, nats_url: str
) -> None:
    async with durable(settings, nats_url, name="pf") as (nc, js, stream, subject):
        upcoming = NextBatch(nc, stream=stream, consumer="pf", batch=4, timeout=1.0)
        for n in range(10):
            await js.publish(subject, str(n).encode())
        got: list[int] = []
        sizes: list[int] = []
        while len(got) < 10:
            batch = await upcoming.take()
            sizes.append(len(batch))
            for msg in batch:
                got.append(int(msg.data))
                await msg.ack()
        assert got == list(range(10))
        assert max(sizes) <= 4  # never more than a batch at once
        assert await upcoming.take() == []  # nothing more came in time: an empty batch
        await upcoming.close()


async def test_everything_that_arrives_while_a_batch_is_handled_comes_in_the_next_one(
    settings: Settings, nats_url: str
) -> None:
    """The request stays open while the loop handles: five messages published during the
    handling are all in the next take, not one of them and the rest a take later."""
    async with durable(settings, nats_url, name="pf") as (nc, js, stream, subject):
        upcoming = NextBatch(nc, stream=stream, consumer="pf", batch=64, timeout=1.0)
        await js.publish(subject, b"first")
        [first] = await upcoming.take()
        for n in range(5):  # "handling" the first, while these come in one by one
            await js.publish(subject, str(n).encode())
            await asyncio.sleep(0.02)
        await first.ack()
        await eventually(lambda: _now(upcoming.waiting()), until=lambda w: len(w) == 5)
        started = time.monotonic()
        batch = await upcoming.take()
        assert [m.data for m in batch] == [b"0", b"1", b"2", b"3", b"4"]
        assert time.monotonic() - started < 0.05  # already here: no round trip to the bus
        for msg in batch:
            await msg.ack()
        await upcoming.close()


async def test_a_replica_stuck_on_a_slow_batch_leaves_later_messages_to_its_peers(
    settings: Settings, nats_url: str
) -> None:
    """The request left open while a batch is handled lasts AHEAD_S: a message published after
    that goes to the other replica, which is idle, not into the stuck one's buffer."""
    async with durable(settings, nats_url, name="pf") as (nc, js, stream, subject):
        stuck = NextBatch(nc, stream=stream, consumer="pf", batch=64, timeout=1.0)
        await js.publish(subject, b"slow")
        [slow] = await stuck.take()  # and now it handles "slow" for a long time
        await asyncio.sleep(AHEAD_S + 0.2)
        await js.publish(subject, b"next")
        peer = NextBatch(nc, stream=stream, consumer="pf", batch=64, timeout=2.0)
        got = await peer.take()
        assert [m.data for m in got] == [b"next"]
        assert stuck.waiting() == []
        for msg in [slow, *got]:
            await msg.ack()
        await stuck.close()
        await peer.close()


async def test_a_request_ends_and_the_next_take_asks_again(
    settings: Settings, nats_url: str
) -> None:
    """Idle past its request's expiry (408 from the server), a take still gets what comes."""
    async with durable(settings, nats_url, name="pf") as (nc, js, stream, subject):
        upcoming = NextBatch(nc, stream=stream, consumer="pf", batch=8, timeout=0.3)
        assert await upcoming.take() == []
        await asyncio.sleep(0.8)  # the request has expired on the server
        assert await upcoming.take() == []
        await js.publish(subject, b"late")
        batch = await eventually(upcoming.take, timeout=5)
        assert [m.data for m in batch] == [b"late"]
        await upcoming.close()


async def test_a_deleted_consumer_is_raised_so_the_loop_sets_it_up_again(
    settings: Settings, nats_url: str
) -> None:
    async with durable(settings, nats_url, name="pf") as (nc, js, stream, _):
        upcoming = NextBatch(nc, stream=stream, consumer="pf", batch=8, timeout=5.0)
        taking = asyncio.create_task(upcoming.take())
        await asyncio.sleep(0.3)  # its request waits on the server
        await js.delete_consumer(stream, "pf")
        with pytest.raises(ConsumerGone):
            await asyncio.wait_for(taking, timeout=3.0)
        await upcoming.close()


async def test_what_was_prefetched_and_not_handled_is_given_back_at_once(
    settings: Settings, nats_url: str
) -> None:
    """A second subscriber of the same durable consumer (another replica) gets a stopped loop's
    prefetched messages at once, long before their ack_wait of 60 s."""
    async with durable(settings, nats_url, name="pf", ack_wait=60.0) as (nc, js, stream, subject):
        stopping = NextBatch(nc, stream=stream, consumer="pf", batch=4, timeout=5.0)
        await js.publish(subject, b"0")
        [handled_one] = await stopping.take()
        await handled_one.ack()
        await js.publish(subject, b"1")  # arrives while "0" would be handled
        await eventually(lambda: _now(stopping.waiting()))
        await stopping.close()
        other = await js.pull_subscribe_bind("pf", stream=stream)
        started = time.monotonic()
        again = await other.fetch(1, timeout=10.0)
        assert [m.data for m in again] == [b"1"]
        assert again[0].metadata.num_delivered == 2
        assert time.monotonic() - started < 5.0


async def _now(messages: list[Msg]) -> list[Msg]:
    return messages


async def test_a_prefetched_batch_is_kept_alive_while_a_slow_batch_is_handled(
    settings: Settings, database_url: str, nats_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ack_wait is 1.5 s and the first event's handler takes 5 s. The event published during it
    is prefetched: it waits those seconds delivered and unacked, so only the loop's in-progress
    beats keep the bus from redelivering it to another replica, which pulls meanwhile."""
    monkeypatch.setattr(consumer_loop, "ACK_WAIT_S", 1.5)
    # the relay is off: a slow handler's transaction holds the read horizon, so the relay would
    # publish the second event only after the first is handled; here the test publishes both
    system = isolated_system(settings, database_url, nats_url, services=[FAULTY], relay=False)
    async with system as deps:
        (slow,) = await deps.store.append(
            "slow-1", [Flaky(slow_times=1, slow_s=5.0)], expected_version=NO_STREAM, metadata=META
        )
        (later,) = await deps.store.append(
            "later-1", [Flaky()], expected_version=NO_STREAM, metadata=META
        )
        await deps.js.publish(settings.event_subject(slow.type), dump_envelope(slow))
        await eventually(lambda: attempts(deps.pool, slow.id))  # its handler is running
        await deps.js.publish(settings.event_subject(later.type), dump_envelope(later))

        async def unacked() -> int:
            info = await deps.js.consumer_info(settings.stream_name, "faulty")
            return int(info.num_ack_pending or 0)

        await eventually(unacked, until=lambda n: n == 2)  # both delivered to the replica
        other_replica = await deps.js.pull_subscribe_bind("faulty", stream=settings.stream_name)
        with pytest.raises((TimeoutError, nats.errors.TimeoutError)):
            stolen = await other_replica.fetch(1, timeout=3.0)
            pytest.fail(f"redelivered while its replica held it: {[m.data for m in stolen]}")
        await other_replica.unsubscribe()
        await eventually(lambda: handled(deps.pool), until=lambda h: len(h) == 2, timeout=20)
        assert await attempts(deps.pool, slow.id) == 1
        assert await attempts(deps.pool, later.id) == 1
        info = await deps.js.consumer_info(settings.stream_name, "faulty")
        assert info.num_redelivered == 0
