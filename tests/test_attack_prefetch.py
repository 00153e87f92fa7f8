"""Attack tests for the consumer prefetch (libs/events/prefetch.py, consumer_loop.run): a stop,
a cancelled lingering pull, two replicas restarted mid-flow and a NATS cut mid-batch. Each
test says what was suspected; all held (each event handled once, in stream order, none lost)."""

from __future__ import annotations

import asyncio
import contextlib
import time

import nats
import pytest
from nats.js.api import AckPolicy, ConsumerConfig, StorageType, StreamConfig

from libs.events.envelope import Actor, Envelope, Metadata
from libs.events.prefetch import NextBatch
from libs.events.runtime import Deps
from libs.events.settings import Settings
from libs.events.store import NO_STREAM, dump_envelope
from libs.events.testing import eventually, isolated_system
from tests.events_for_tests import Flaky
from tests.faulty_service import FAULTY, attempts, handled

META = Metadata(actor=Actor.system(), service="test")


async def publish(deps: Deps, settings: Settings, *envelopes: Envelope) -> None:
    for envelope in envelopes:
        await deps.js.publish(settings.event_subject(envelope.type), dump_envelope(envelope))


async def unacked(deps: Deps, settings: Settings) -> int:
    info = await deps.js.consumer_info(settings.stream_name, "faulty")
    return int(info.num_ack_pending or 0)


async def test_held_stop_during_a_slow_batch_gives_the_prefetched_event_back_at_once(
    settings: Settings, database_url: str, nats_url: str
) -> None:
    """HELD. The first event's handler takes 0.6 s; the prefetch started with it is a lingering
    pull that gets the second event while the stop is under way. Suspected: close() cancels the
    fetch with the message collected but not returned, so it waits out ack_wait (15 s). In fact
    the server ends a no_wait+expires pull as soon as it has delivered what there was, so the
    fetch is done, the message is nak'ed by close(), and the restarted replica gets it at once."""
    first = isolated_system(settings, database_url, nats_url, services=[FAULTY], relay=False)
    deps = await first.start()
    try:
        (slow,) = await deps.store.append(
            "slow-1", [Flaky(slow_times=1, slow_s=0.6)], expected_version=NO_STREAM, metadata=META
        )
        (later,) = await deps.store.append(
            "later-1", [Flaky()], expected_version=NO_STREAM, metadata=META
        )
        await publish(deps, settings, slow)
        await eventually(lambda: attempts(deps.pool, slow.id), interval=0.005)  # handler runs
        await asyncio.sleep(0.05)  # the prefetch's no-wait probe found nothing: it lingers
        await publish(deps, settings, later)
        await eventually(lambda: unacked(deps, settings), until=lambda n: n == 2, interval=0.005)
    finally:
        await first.stop()  # stopping is set while the slow handler still runs
    second = isolated_system(settings, database_url, nats_url, services=[FAULTY], relay=False)
    started = time.monotonic()
    async with second as deps2:
        done = await eventually(
            lambda: handled(deps2.pool), until=lambda h: len(h) == 2, timeout=20
        )
        took = time.monotonic() - started
        print(f"restarted replica handled the prefetched event after {took:.1f} s: {done}")
        assert took < 5.0, f"the prefetched event came back only after {took:.1f} s"


async def test_a_closed_prefetch_s_open_request_does_not_swallow_the_next_message(
    settings: Settings, nats_url: str
) -> None:
    """close() unsubscribes the inbox of a pull request still open on the server (batch 64,
    expires 5 s). Does that orphaned request capture the next message, leaving it unacked in a
    dead inbox until ack_wait (60 s here), while another replica pulls in vain?"""
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    stream, subject = f"{settings.stream_name}_AT", f"{settings.namespace}.at"
    try:
        await js.add_stream(StreamConfig(name=stream, subjects=[subject], storage=StorageType.FILE))
        config = ConsumerConfig(durable_name="at", ack_policy=AckPolicy.EXPLICIT, ack_wait=60.0)
        await js.add_consumer(stream, config)
        stopping = NextBatch(nc, stream=stream, consumer="at", batch=64, timeout=5.0)
        taking = asyncio.create_task(stopping.take())
        await asyncio.sleep(0.3)  # its request is open on the server, waiting for a message
        taking.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await taking
        await stopping.close()
        await js.publish(subject, b"1")
        other = await js.pull_subscribe_bind("at", stream=stream)
        started = time.monotonic()
        try:
            again = await other.fetch(1, timeout=8.0)
        except (TimeoutError, nats.errors.TimeoutError):
            again = []
        took = time.monotonic() - started
        assert [m.data for m in again] == [b"1"], f"swallowed by the closed request ({took:.1f} s)"
    finally:
        await js.delete_stream(stream)
        await nc.close()


async def test_two_replicas_stopped_and_restarted_mid_flow_handle_each_event_once_in_order(
    settings: Settings, database_url: str, nats_url: str
) -> None:
    """Two replicas share the durable consumer, both prefetching; events of 6 streams come
    interleaved, some slow, some failing once (nak, redelivery). Each replica is stopped while
    busy and started again. Every event must be handled exactly once, in version order per
    stream, nothing parked, and all of it well before ack_wait would bring back a lost one."""
    import random

    def replica(name: str):  # type: ignore[no-untyped-def]
        return isolated_system(
            settings, database_url, nats_url, services=[FAULTY], relay=False, replica=name
        )

    rng = random.Random(7)
    r1, r2 = replica("r1"), replica("r2")
    d1 = await r1.start()
    await r2.start()
    written: list[Envelope] = []
    try:
        for s in range(6):
            events = [
                Flaky(
                    fail_times=1 if rng.random() < 0.1 else 0,
                    slow_times=1 if rng.random() < 0.1 else 0,
                    slow_s=0.05,
                )
                for _ in range(40)
            ]
            written += await d1.store.append(
                f"s-{s}", events, expected_version=NO_STREAM, metadata=META
            )
        rng.shuffle(written)  # the bus order is not the stream order (replicas, redeliveries)
        started = time.monotonic()
        for n, env in enumerate(written):
            await publish(d1, settings, env)
            if n == 60:
                await r2.stop()  # busy: a batch in hand, a prefetch in flight or held
            if n == 100:
                await (r2 := replica("r2")).start()
            if n == 160:
                await r1.stop()
                d1 = await (r1 := replica("r1")).start()
            await asyncio.sleep(0.003)
        done = await eventually(
            lambda: handled(d1.pool), until=lambda h: len(h) >= len(written), timeout=30
        )
        took = time.monotonic() - started
        await asyncio.sleep(0.5)
        done = await handled(d1.pool)
        print(f"all {len(written)} handled in {took:.1f}s")
        assert len(done) == len(set(done)) == len(written), "an event handled twice"
        for s in range(6):
            versions = [v for stream, v in done if stream == f"s-{s}"]
            assert versions == sorted(versions), f"s-{s} out of order: {versions}"
        parked = await d1.pool.fetch("SELECT event_id, error FROM eventstore.parked_events")
        assert parked == []
        assert took < 12.0, f"took {took:.1f}s: something waited out ack_wait"
    finally:
        await r1.stop()
        await r2.stop()


async def test_a_nats_cut_while_a_batch_is_handled_and_the_prefetch_lingers(
    settings: Settings, database_url: str, nats_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The connection is cut during a slow batch, with the prefetch lingering; events are
    published (directly) around the cut. All must be handled once, soon after reconnecting,
    with no task left pending or an exception never retrieved."""
    import gc
    import logging
    from urllib.parse import urlsplit

    from tests.tcp_proxy import CuttableProxy

    caplog.set_level(logging.ERROR, logger="asyncio")
    host, port = urlsplit(nats_url).hostname, urlsplit(nats_url).port
    proxy = CuttableProxy(host or "127.0.0.1", port or 4222)
    via_proxy = f"nats://127.0.0.1:{await proxy.start()}"
    direct = await nats.connect(nats_url)
    js = direct.jetstream()
    try:
        system = isolated_system(settings, database_url, via_proxy, services=[FAULTY], relay=False)
        async with system as deps:
            (slow,) = await deps.store.append(
                "slow-1",
                [Flaky(slow_times=1, slow_s=0.8)],
                expected_version=NO_STREAM,
                metadata=META,
            )
            later = await deps.store.append(
                "later-1", [Flaky() for _ in range(20)], expected_version=NO_STREAM, metadata=META
            )
            await js.publish(settings.event_subject(slow.type), dump_envelope(slow))
            await eventually(lambda: attempts(deps.pool, slow.id), interval=0.005)
            for env in later[:10]:
                await js.publish(settings.event_subject(env.type), dump_envelope(env))
            await asyncio.sleep(0.1)
            assert proxy.cut() > 0
            for env in later[10:]:
                await js.publish(settings.event_subject(env.type), dump_envelope(env))
            started = time.monotonic()
            done = await eventually(
                lambda: handled(deps.pool), until=lambda h: len(h) >= 21, timeout=30
            )
            took = time.monotonic() - started
            await asyncio.sleep(0.3)
            done = await handled(deps.pool)
            print(f"handled 21 in {took:.1f}s after the cut")
            assert len(done) == len(set(done)) == 21
            assert took < 5.0, f"took {took:.1f}s: something waited out ack_wait"
        gc.collect()
        await asyncio.sleep(0.1)
        bad = [r.getMessage() for r in caplog.records if r.name == "asyncio"]
        assert bad == [], bad
    finally:
        await direct.close()
        await proxy.stop()
