"""Durable timers: on time, once, across restarts and racing schedulers; cancel wins."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from libs.events.envelope import Actor, Metadata
from libs.events.settings import Settings
from libs.events.testing import eventually
from libs.events.timers import cancel, schedule, timer_stream
from tests.events_for_tests import Counted
from tests.test_runtime import make_system

META = Metadata(actor=Actor.system(), service="test")


async def test_a_timer_fires_once_on_time(
    settings: Settings, database_url: str, nats_url: str
) -> None:
    async with make_system(settings, database_url, nats_url, services=(), timers=True) as deps:
        due = datetime.now(UTC) + timedelta(seconds=0.5)
        async with deps.pool.acquire() as conn:
            timer_id = await schedule(
                deps.store, conn, due_at=due, target_stream="c-1", event=Counted(n=7), metadata=META
            )
        [fired] = await eventually(lambda: deps.store.read_stream("c-1"), timeout=5)
        assert fired.data == {"n": 7}
        lateness = (fired.recorded_at - due).total_seconds()
        assert -0.05 <= lateness < 0.5
        assert [e.type for e in await deps.store.read_stream(timer_stream(timer_id))] == [
            "timer.scheduled",
            "timer.fired",
        ]
        assert fired.metadata.causation_id is not None


async def test_a_timer_due_while_nothing_ran_fires_once_after_restart(
    settings: Settings, database_url: str, nats_url: str
) -> None:
    system = make_system(settings, database_url, nats_url, services=(), timers=True)
    async with system as deps, deps.pool.acquire() as conn:
        await schedule(
            deps.store,
            conn,
            due_at=datetime.now(UTC) + timedelta(seconds=0.4),
            target_stream="c-1",
            event=Counted(n=1),
            metadata=META,
        )
        await schedule(
            deps.store,
            conn,
            due_at=datetime.now(UTC) + timedelta(seconds=2.0),
            target_stream="c-2",
            event=Counted(n=2),
            metadata=META,
        )
    await asyncio.sleep(0.8)  # the first is due while no scheduler runs
    # two schedulers start at once, as two replicas would
    async with (
        make_system(
            settings, database_url, nats_url, services=(), timers=True, replica="a"
        ) as deps,
        make_system(settings, database_url, nats_url, services=(), timers=True, replica="b"),
    ):
        await eventually(lambda: deps.store.read_stream("c-1"), timeout=5)
        [late] = await eventually(lambda: deps.store.read_stream("c-2"), timeout=5)
        await asyncio.sleep(0.3)
        assert len(await deps.store.read_stream("c-1")) == 1
        assert len(await deps.store.read_stream("c-2")) == 1
        assert late.data == {"n": 2}


async def test_a_cancelled_timer_never_fires(
    settings: Settings, database_url: str, nats_url: str
) -> None:
    async with make_system(settings, database_url, nats_url, services=(), timers=True) as deps:
        async with deps.pool.acquire() as conn:
            timer_id = await schedule(
                deps.store,
                conn,
                due_at=datetime.now(UTC) + timedelta(seconds=0.3),
                target_stream="c-1",
                event=Counted(n=1),
                metadata=META,
            )
            assert await cancel(deps.store, conn, timer_id=timer_id, metadata=META)
            assert not await cancel(deps.store, conn, timer_id=timer_id, metadata=META)
        await asyncio.sleep(0.6)
        assert await deps.store.read_stream("c-1") == []
