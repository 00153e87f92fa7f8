"""The consumer fetches its next batch while it handles the current one (libs/events/prefetch.py),
on real NATS and Postgres: batches come in order, a prefetched batch is kept alive past ack_wait
while a slow batch is handled, and what was prefetched and never handled is given back at once
when the loop stops, not after ack_wait."""

from __future__ import annotations

import time

import nats
import pytest
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, StorageType, StreamConfig

from libs.events import consumer_loop
from libs.events.envelope import Actor, Metadata
from libs.events.prefetch import NextBatch
from libs.events.settings import Settings
from libs.events.store import NO_STREAM, dump_envelope
from libs.events.testing import eventually, isolated_system
from tests.events_for_tests import Flaky
from tests.faulty_service import FAULTY, attempts, handled

META = Metadata(actor=Actor.system(), service="test")


async def test_batches_taken_one_after_another_keep_the_stream_order(
    settings: Settings, nats_url: str
) -> None:
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    stream, subject = f"{settings.stream_name}_PF", f"{settings.namespace}.pf"
    try:
        await js.add_stream(StreamConfig(name=stream, subjects=[subject], storage=StorageType.FILE))
        await js.add_consumer(
            stream, ConsumerConfig(durable_name="pf", ack_policy=AckPolicy.EXPLICIT)
        )
        sub = await js.pull_subscribe_bind("pf", stream=stream)
        upcoming = NextBatch(sub, batch=4, timeout=1.0)
        got: list[int] = []
        for n in range(10):
            await js.publish(subject, str(n).encode())
        while len(got) < 10:
            batch = await upcoming.take()
            upcoming.start()  # in flight while this batch is "handled"
            for msg in batch:
                got.append(int(msg.data))
                await msg.ack()
        assert got == list(range(10))
        assert await upcoming.take() == []  # nothing more came in time: an empty batch, no error
        await upcoming.close()
    finally:
        await js.delete_stream(stream)
        await nc.close()


async def test_what_was_prefetched_and_not_handled_is_given_back_at_once(
    settings: Settings, nats_url: str
) -> None:
    """A second subscriber of the same durable consumer (another replica) gets a stopped loop's
    prefetched messages at once, long before their ack_wait of 60 s."""
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    stream, subject = f"{settings.stream_name}_PF", f"{settings.namespace}.pf"
    try:
        await js.add_stream(StreamConfig(name=stream, subjects=[subject], storage=StorageType.FILE))
        config = ConsumerConfig(durable_name="pf", ack_policy=AckPolicy.EXPLICIT, ack_wait=60.0)
        await js.add_consumer(stream, config)
        stopping = NextBatch(
            await js.pull_subscribe_bind("pf", stream=stream), batch=4, timeout=5.0
        )
        stopping.start()
        await js.publish(subject, b"1")
        await eventually(lambda: _now(stopping.waiting()), timeout=5)
        await stopping.close()
        other = await js.pull_subscribe_bind("pf", stream=stream)
        started = time.monotonic()
        again = await other.fetch(1, timeout=10.0)
        assert [m.data for m in again] == [b"1"]
        assert again[0].metadata.num_delivered == 2
        assert time.monotonic() - started < 5.0
    finally:
        await js.delete_stream(stream)
        await nc.close()


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
