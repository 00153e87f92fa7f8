"""The consumer on its failure paths, on real Postgres and NATS: a failure is pinned on the event
that failed, the checkpoint never passes an event that was neither handled nor parked, attempts
are counted in the store, and no failure of the store or the bus ends the consumer."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import nats
from nats.js.api import ConsumerConfig, DeliverPolicy

from libs.events.consumer_loop import ConsumerLoop
from libs.events.consumers import HandlerContext, list_parked, park, retry_parked
from libs.events.envelope import Actor, Envelope, Metadata
from libs.events.runtime import Deps, Service
from libs.events.settings import Settings
from libs.events.store import ANY, NO_STREAM, dump_envelope
from libs.events.system import System
from libs.events.testing import eventually, isolated_system
from tests.events_for_tests import AppendsTwice, Counted, Flaky
from tests.faulty_service import FAULTY, attempts, handled

META = Metadata(actor=Actor.system(), service="test")


def faulty_system(
    settings: Settings,
    database_url: str,
    nats_url: str,
    *,
    relay: bool = False,
    replica: str = "r1",
    services: Sequence[Service] = (FAULTY,),
    **overrides: object,
) -> System:
    tuned = settings.model_copy(update=overrides) if overrides else settings
    return isolated_system(
        tuned, database_url, nats_url, services=services, relay=relay, replica=replica
    )


async def publish(deps: Deps, settings: Settings, *envelopes: Envelope) -> None:
    """Put envelopes on the bus by hand, in this order (the relay is off in these tests)."""
    for envelope in envelopes:
        await deps.js.publish(settings.event_subject(envelope.type), dump_envelope(envelope))


async def test_an_event_handled_in_a_gap_repair_is_not_skipped_when_the_delivered_one_is_parked(
    settings: Settings, database_url: str, nats_url: str
) -> None:
    """v2 arrives first and always fails; v1 is healthy and runs inside v2's gap repair, so its
    effects roll back with each of v2's failures. Parking v2 must not pass v1."""
    async with faulty_system(settings, database_url, nats_url) as deps:
        v1, v2 = await deps.store.append(
            "f-1", [Flaky(), Flaky(fail_times=99)], expected_version=NO_STREAM, metadata=META
        )
        await publish(deps, settings, v2)
        parked = await eventually(lambda: list_parked(deps.pool), timeout=20)
        assert [p.event_id for p in parked] == [v2.id]
        assert await eventually(lambda: handled(deps.pool)) == [("f-1", 1)]
        await publish(deps, settings, v1)  # v1's own message comes late: a repeat now
        await asyncio.sleep(0.3)
        assert await handled(deps.pool) == [("f-1", 1)]


async def test_a_gap_event_that_keeps_failing_is_parked_itself_and_the_stream_moves_on(
    settings: Settings, database_url: str, nats_url: str
) -> None:
    async with faulty_system(settings, database_url, nats_url) as deps:
        v1, _, v3 = await deps.store.append(
            "f-1",
            [Flaky(fail_times=99), Flaky(), Flaky()],
            expected_version=NO_STREAM,
            metadata=META,
        )
        await publish(deps, settings, v3)
        parked = await eventually(lambda: list_parked(deps.pool), timeout=20)
        assert [(p.event_id, p.attempts) for p in parked] == [(v1.id, 3)]
        assert await eventually(lambda: handled(deps.pool), until=lambda h: len(h) == 2) == [
            ("f-1", 2),
            ("f-1", 3),
        ]


async def test_a_slow_gap_event_is_the_one_that_times_out_and_is_parked(
    settings: Settings, database_url: str, nats_url: str
) -> None:
    """The time limit applies per event: the slow gap event is parked, the healthy delivered one
    after it is handled."""
    async with faulty_system(settings, database_url, nats_url, handler_timeout_s=0.3) as deps:
        slow, healthy = await deps.store.append(
            "f-1",
            [Flaky(slow_times=99, slow_s=5.0), Flaky()],
            expected_version=NO_STREAM,
            metadata=META,
        )
        await publish(deps, settings, healthy)
        parked = await eventually(lambda: list_parked(deps.pool), timeout=20)
        assert [p.event_id for p in parked] == [slow.id]
        assert "TimeoutError" in parked[0].error
        assert await eventually(lambda: handled(deps.pool)) == [("f-1", 2)]


async def test_attempts_are_counted_per_event_in_the_store_not_per_bus_message(
    settings: Settings, database_url: str, nats_url: str
) -> None:
    """The same event on the bus twice (as after a relay republish) fails three times in all,
    not three times per message."""
    async with faulty_system(settings, database_url, nats_url) as deps:
        [bad] = await deps.store.append(
            "f-1", [Flaky(fail_times=99)], expected_version=NO_STREAM, metadata=META
        )
        await publish(deps, settings, bad, bad)
        parked = await eventually(lambda: list_parked(deps.pool), timeout=20)
        await asyncio.sleep(1.5)  # the second message is delivered, and must not run it again
        assert parked[0].attempts == 3
        assert await attempts(deps.pool, bad.id) == 3


async def test_two_appends_to_one_stream_from_one_handler_run_are_both_kept(
    settings: Settings, database_url: str, nats_url: str
) -> None:
    async with faulty_system(settings, database_url, nats_url) as deps:
        [cause] = await deps.store.append(
            "cmd-1", [AppendsTwice(stream_id="out-1")], expected_version=NO_STREAM, metadata=META
        )
        dispatcher = FAULTY.dispatchers(deps)["faulty"]
        async with deps.store.transaction() as conn:
            await dispatcher.run_handler(conn, cause)
        out = await deps.store.read_stream("out-1")
        assert [e.data for e in out] == [{"n": 1}, {"n": 2}]
        # running the handler again for the same event writes nothing more (ids are derived)
        async with deps.store.transaction() as conn:
            ctx = HandlerContext(
                conn=conn,
                store=deps.store,
                envelope=cause,
                consumer="faulty",
                service="faulty",
                settings=deps.settings,
            )
            await ctx.append("out-1", [Counted(n=1)], expected_version=ANY)
            await ctx.append("out-1", [Counted(n=2)], expected_version=ANY)
        assert len(await deps.store.read_stream("out-1")) == 2


async def test_the_consumer_outlives_a_store_that_refuses_to_park(
    settings: Settings, database_url: str, nats_url: str
) -> None:
    """Parking fails (the store refuses writes to parked_events) when an event reaches its last
    attempt: the consumer keeps handling other events and parks the event once it can."""
    async with faulty_system(settings, database_url, nats_url, relay=True) as deps:
        await deps.pool.execute(
            "CREATE FUNCTION faulty.refuse() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN RAISE EXCEPTION 'parking is down'; END $$; "
            "CREATE TRIGGER refuse BEFORE INSERT ON eventstore.parked_events "
            "FOR EACH ROW EXECUTE FUNCTION faulty.refuse()"
        )
        [bad] = await deps.store.append(
            "f-bad", [Flaky(fail_times=99)], expected_version=NO_STREAM, metadata=META
        )
        await eventually(lambda: attempts(deps.pool, bad.id), until=lambda n: n >= 4, timeout=20)
        for i in range(20):
            await deps.store.append(f"c-{i}", [Counted(n=1)], expected_version=ANY, metadata=META)
        await eventually(lambda: handled(deps.pool), until=lambda h: len(h) == 20, timeout=20)
        await deps.pool.execute("DROP TRIGGER refuse ON eventstore.parked_events")
        parked = await eventually(lambda: list_parked(deps.pool), timeout=30)
        assert [p.event_id for p in parked] == [bad.id]
        assert deps.supervisor.down() == []


async def test_batches_of_overlapping_streams_in_opposite_orders_do_not_deadlock(
    settings: Settings, database_url: str, nats_url: str
) -> None:
    async with faulty_system(settings, database_url, nats_url) as deps:
        a1, a2 = await deps.store.append(
            "f-a", [Flaky(slow_times=1, slow_s=0.3), Flaky()], expected_version=0, metadata=META
        )
        b1, b2 = await deps.store.append(
            "f-b", [Flaky(slow_times=1, slow_s=0.3), Flaky()], expected_version=0, metadata=META
        )
        dispatcher = FAULTY.dispatchers(deps)["faulty"]

        async def apply(envelopes: list[Envelope]) -> None:
            async with deps.store.transaction() as conn:
                await dispatcher.apply_batch(conn, envelopes)

        await asyncio.gather(apply([a1, b1]), apply([b2, a2]))
        assert sorted(await handled(deps.pool)) == [("f-a", 1), ("f-a", 2), ("f-b", 1), ("f-b", 2)]


async def test_an_ack_that_fails_after_the_commit_is_not_a_handler_failure(
    settings: Settings, database_url: str, nats_url: str
) -> None:
    """With one attempt allowed, counting a failed ack as a failure would park a processed event."""
    tables_only = Service(name="faulty", migrations_dir=FAULTY.migrations_dir)
    async with faulty_system(
        settings, database_url, nats_url, services=(tables_only,), handler_max_attempts=1
    ) as deps:
        [event] = await deps.store.append(
            "f-1", [Flaky()], expected_version=NO_STREAM, metadata=META
        )
        await publish(deps, settings, event)
        other = await nats.connect(nats_url)
        sub = await other.jetstream().pull_subscribe(
            settings.event_subject_filter(),
            durable="by-hand",
            stream=settings.stream_name,
            config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL),
        )
        [msg] = await sub.fetch(1, timeout=5)
        await other.close()  # the ack will have no connection to go out on
        loop = ConsumerLoop(deps=deps, dispatcher=FAULTY.dispatchers(deps)["faulty"])
        await loop.handle_batch([msg])
        assert await handled(deps.pool) == [("f-1", 1)]
        assert await attempts(deps.pool, event.id) == 1  # the handler ran once and succeeded
        counted = await deps.pool.fetchval("SELECT count(*) FROM eventstore.consumer_attempts")
        assert counted == 0
        assert await list_parked(deps.pool) == []


async def test_concurrent_retries_of_a_parked_event_run_its_handler_once(
    settings: Settings, database_url: str, nats_url: str
) -> None:
    async with faulty_system(settings, database_url, nats_url, relay=True) as deps:
        [bad] = await deps.store.append(
            "f-1", [Flaky(fail_times=3)], expected_version=NO_STREAM, metadata=META
        )
        await eventually(lambda: list_parked(deps.pool), timeout=20)
        dispatchers = FAULTY.dispatchers(deps)
        done = await asyncio.gather(*(retry_parked(deps.pool, dispatchers, bad.id) for _ in "ab"))
        assert sorted(done) == [0, 1]
        assert await handled(deps.pool) == [("f-1", 1)]
        assert await list_parked(deps.pool) == []


async def test_a_consumer_whose_bus_position_expired_catches_up_from_the_store(
    settings: Settings, database_url: str, nats_url: str
) -> None:
    """Events published while the consumer was down are gone from the bus (retention, here a
    purge) and their streams get no later event: the consumer still handles them."""
    async with faulty_system(settings, database_url, nats_url, relay=True, services=()) as deps:
        for i in range(30):
            await deps.store.append(f"c-{i}", [Counted(n=i)], expected_version=ANY, metadata=META)

        async def on_bus() -> int:
            return int((await deps.js.stream_info(settings.stream_name)).state.messages)

        await eventually(on_bus, until=lambda n: n == 30)
        await deps.js.purge_stream(settings.stream_name)
    async with faulty_system(settings, database_url, nats_url) as deps:
        assert len(await eventually(lambda: handled(deps.pool), until=lambda h: len(h) == 30)) == 30


async def test_a_consumer_down_longer_than_the_bus_retention_catches_up_from_the_store(
    settings: Settings, database_url: str, nats_url: str
) -> None:
    async with faulty_system(settings, database_url, nats_url, relay=True) as deps:
        await deps.store.append("c-0", [Counted(n=0)], expected_version=ANY, metadata=META)
        await eventually(lambda: handled(deps.pool))
    async with faulty_system(settings, database_url, nats_url, relay=True, services=()) as deps:
        for i in range(1, 20):
            await deps.store.append(f"c-{i}", [Counted(n=i)], expected_version=ANY, metadata=META)

        async def on_bus() -> int:
            return int((await deps.js.stream_info(settings.stream_name)).state.messages)

        await eventually(on_bus, until=lambda n: n == 20)
        config = (await deps.js.stream_info(settings.stream_name)).config
        config.max_age = 1.0  # the bus forgets them while the consumer is down
        config.duplicate_window = 1.0
        await deps.js.update_stream(config)
        await eventually(on_bus, until=lambda n: n == 0, timeout=15)
    async with faulty_system(settings, database_url, nats_url) as deps:
        assert len(await eventually(lambda: handled(deps.pool), until=lambda h: len(h) == 20)) == 20


async def test_an_event_another_replica_handled_meanwhile_is_not_parked(
    settings: Settings, database_url: str, nats_url: str
) -> None:
    """Replica A fails an event for the last time while replica B handles it (through a gap
    repair, or a second copy of its message): parking it then would let a retry run it twice."""
    tables_only = Service(name="faulty", migrations_dir=FAULTY.migrations_dir)
    async with faulty_system(settings, database_url, nats_url, services=(tables_only,)) as deps:
        [event] = await deps.store.append(
            "f-1", [Flaky()], expected_version=NO_STREAM, metadata=META
        )
        dispatcher = FAULTY.dispatchers(deps)["faulty"]
        async with deps.store.transaction() as conn:
            assert await dispatcher.apply(conn, event)  # replica B
        async with deps.pool.acquire() as conn:  # replica A, at its last attempt
            assert not await park(
                conn, consumer="faulty", envelope=event, error="RuntimeError()", attempts=3
            )
        assert await list_parked(deps.pool) == []
