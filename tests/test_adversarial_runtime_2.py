"""Adversarial tests of the fixes in 223ace0 / edccf03 (second review): each shows a defect of a
fix itself, on real Postgres and NATS (no mocks of either). See each test's docstring."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime

import asyncpg
from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext

from libs.events.consumer_loop import ConsumerLoop
from libs.events.consumers import REPLAY_LOCK, list_parked
from libs.events.envelope import Envelope
from libs.events.parking import record_start
from libs.events.replay import replay_service
from libs.events.runtime import Deps
from libs.events.settings import Settings
from libs.events.store import NO_STREAM
from libs.events.testing import eventually
from tests.events_for_tests import Counted
from tests.faulty_service import handled
from tests.test_adversarial_runtime import ADV, META, TABLES_ONLY, deployment, publish


async def next_message(sub: JetStreamContext.PullSubscription, timeout: float) -> Msg | None:
    """The consumer's next message within `timeout`, or None."""
    try:
        [msg] = await sub.fetch(1, timeout=timeout)
    except (TimeoutError, NatsTimeoutError):
        return None
    return msg


async def manual_loop(deps: Deps) -> tuple[ConsumerLoop, JetStreamContext.PullSubscription]:
    """The 'adv' consumer's loop, driven by hand one fetch at a time (the deployment runs no
    consumer of its own)."""
    loop = ConsumerLoop(deps=deps, dispatcher=ADV.dispatchers(deps)["adv"])
    await loop._subscribe()
    sub = await deps.js.pull_subscribe_bind(loop.name, stream=deps.settings.stream_name)
    return loop, sub


async def test_an_event_parked_for_killing_its_process_is_not_redelivered_forever(
    settings: Settings, database_url: str, nats_url: str
) -> None:
    """Once a redelivered event has as many unfinished runs as attempts, _may_run_again parks it
    and naks the message (0.01 s) instead of acking it. Its next delivery is a redelivery again:
    record_start says 'died >= attempts' again, park() returns False (its checkpoint has passed
    it), and the message is nak'ed at once again, forever: never acked, redelivered ~100 times a
    second, an attempt and a 'failed its last attempt' log line recorded each time."""
    async with deployment(settings, database_url, nats_url, services=(TABLES_ONLY,)) as deps:
        loop, sub = await manual_loop(deps)
        try:
            [bad] = await deps.store.append(
                "k-1", [Counted(n=1)], expected_version=NO_STREAM, metadata=META
            )
            await publish(deps, settings, bad)
            first = await next_message(sub, 5)
            assert first is not None
            await first.nak()  # the process handling it died: the bus delivers it again
            # three more runs began on redeliveries and never finished (their processes died)
            for _ in range(3):
                async with deps.pool.acquire() as conn:
                    await record_start(conn, consumer="adv", envelope=bad)
            again = await next_message(sub, 5)
            assert again is not None and (again.metadata.num_delivered or 0) > 1
            await loop.handle_batch([again])
            assert [p.event_id for p in await list_parked(deps.pool)] == [bad.id]
            redeliveries = 0
            for _ in range(5):
                msg = await next_message(sub, 1.0)
                if msg is None:
                    break
                redeliveries += 1
                await loop.handle_batch([msg])
            assert redeliveries == 0, (
                f"the parked event's message came back {redeliveries} times in a row (and "
                f"would forever); attempts recorded: "
                f"{await deps.pool.fetchval('SELECT attempts FROM eventstore.consumer_attempts')}"
            )
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()


async def test_a_healthy_event_deferred_by_a_replay_is_not_parked_as_killing_its_process(
    settings: Settings, database_url: str, nats_url: str
) -> None:
    """_handle records the start of a run on a redelivered message, but on ReplayInProgress it
    naks and returns without record_finish. While a replay of the consumer holds its lock
    (here: waiting to TRUNCATE the projection behind a long report query), every redelivery of
    a healthy live event adds one unfinished run; after 4 deliveries it 'died' 3 times. When
    the replay ends without having run it (Ctrl-C while it waited: _reset rolls back, nothing is
    recorded as interrupted), the next delivery parks the healthy event, 'it kills its process'."""
    async with deployment(settings, database_url, nats_url, services=(TABLES_ONLY,)) as deps:
        loop, sub = await manual_loop(deps)
        reader = await asyncpg.connect(database_url)
        report = reader.transaction()
        await report.start()
        replay: asyncio.Task[int] | None = None
        try:
            await reader.execute("LOCK TABLE faulty.handled IN ACCESS SHARE MODE")  # a report
            replay = asyncio.create_task(replay_service(ADV, deps))

            async def replay_holds_the_lock() -> bool:
                return bool(
                    await deps.pool.fetchval(
                        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                        "AND classid = $1 AND granted",
                        REPLAY_LOCK,
                    )
                )

            await eventually(replay_holds_the_lock)
            [good] = await deps.store.append(
                "g-1", [Counted(n=1)], expected_version=NO_STREAM, metadata=META
            )
            await publish(deps, settings, good)
            for _ in range(6):  # each delivery steps aside (nak 1 s) while the replay runs
                msg = await next_message(sub, 5)
                assert msg is not None
                await loop.handle_batch([msg])
            replay.cancel()  # the operator's Ctrl-C
            with contextlib.suppress(asyncio.CancelledError):
                await replay
            await report.rollback()
            for _ in range(3):
                msg = await next_message(sub, 3)
                if msg is None:
                    break
                await loop.handle_batch([msg])
            parked = await list_parked(deps.pool)
            assert parked == [], f"a healthy event was parked: {[p.error for p in parked]}"
            assert await handled(deps.pool) == [("g-1", 1)]
        finally:
            if replay is not None and not replay.done():
                replay.cancel()
                with contextlib.suppress(BaseException):
                    await replay
            with contextlib.suppress(Exception):
                await report.rollback()
            await reader.close()
            with contextlib.suppress(Exception):
                await sub.unsubscribe()


async def test_a_message_reusing_a_stored_id_does_not_move_the_checkpoint_past_real_events(
    settings: Settings, database_url: str, nats_url: str
) -> None:
    """apply_batch's `verify` only checks that the message's id is in the store, then handles
    the bus's copy: its stream, version and data. A message carrying the id of a real event
    (copied from any earlier message: ids are not secret) but another version is handled with
    the bus's data and moves the checkpoint to that version, so the real events up to it are
    skipped as repeats: lost, as before the fix."""
    async with deployment(settings, database_url, nats_url) as deps:
        [v1] = await deps.store.append(
            "f-1", [Counted(n=1)], expected_version=NO_STREAM, metadata=META
        )
        await publish(deps, settings, v1)
        await eventually(lambda: handled(deps.pool))
        forged = Envelope(
            id=v1.id,  # a real, stored id
            stream_id="f-1",
            version=3,
            type="test.counted",
            schema_version=1,
            data={"n": 666},
            metadata=META,
            recorded_at=datetime.now(UTC),
            position=10_000,
        )
        await publish(deps, settings, forged)
        await asyncio.sleep(0.5)
        v2, v3 = await deps.store.append(
            "f-1", [Counted(n=2), Counted(n=3)], expected_version=1, metadata=META
        )
        await publish(deps, settings, v2, v3)

        async def handled_versions() -> list[tuple[str, int]]:
            return await handled(deps.pool)

        seen = await eventually(
            handled_versions, until=lambda h: ("f-1", 3) in h or len(h) >= 3, timeout=10
        )
        await asyncio.sleep(0.5)
        seen = await handled(deps.pool)
        ids = {r["event_id"] for r in await deps.pool.fetch("SELECT event_id FROM faulty.handled")}
        assert {v2.id, v3.id} <= ids, f"real events v2/v3 were never handled; handled: {seen}"


async def test_a_full_batch_of_timers_on_a_locked_target_does_not_starve_the_other_timers(
    settings: Settings, database_url: str, nats_url: str
) -> None:
    """fire_due claims the `batch` (100) earliest due timers, and one whose target stream is
    locked waits lock_timeout (1 s) and stays pending. With a batch's worth of timers on one
    locked stream (an incident's escalation steps, while a slow transaction appends to it), every
    round claims the same 100, spends 100 s on them, returns 100, and run() goes again at once
    (`while fire_due() == batch`): a timer due just after them on an unlocked stream never
    fires, and the scheduler never beats, so it is reported stalled too."""
    from datetime import timedelta

    from libs.events.timers import schedule

    async with deployment(settings, database_url, nats_url, services=(), timers=True) as deps:
        locker = await asyncpg.connect(database_url)
        slow = locker.transaction()
        await slow.start()
        try:
            await deps.store.append(
                "hot", [Counted(n=0)], expected_version=NO_STREAM, metadata=META, conn=locker
            )
            now = datetime.now(UTC)
            async with deps.pool.acquire() as conn:
                for i in range(100):
                    await schedule(
                        deps.store,
                        conn,
                        due_at=now + timedelta(seconds=0.5, microseconds=i),
                        target_stream="hot",
                        event=Counted(n=i),
                        metadata=META,
                    )
                await schedule(
                    deps.store,
                    conn,
                    due_at=now + timedelta(seconds=0.6),
                    target_stream="cold",
                    event=Counted(n=1),
                    metadata=META,
                )
            try:
                await eventually(lambda: deps.store.read_stream("cold"), timeout=8)
            except AssertionError:
                raise AssertionError(
                    "the timer on an unlocked stream did not fire within 7 s of being due"
                ) from None
        finally:
            await slow.rollback()
            await locker.close()
