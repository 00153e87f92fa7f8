"""Replay under live load: it never holds the server-wide read horizon for its whole run (other
services keep receiving events while it runs), it cannot deadlock with live handlers, and the
rebuilt projection equals what live handling gives."""

from __future__ import annotations

import asyncio
from collections import Counter as Tally

import asyncpg

from libs.events.consumers import list_parked
from libs.events.envelope import Actor, Metadata
from libs.events.replay import replay_service
from libs.events.runtime import Deps
from libs.events.settings import Settings
from libs.events.store import ANY
from libs.events.testing import eventually, isolated_system
from tests.demo_service import DEMO
from tests.events_for_tests import Counted, Flaky
from tests.faulty_service import FAULTY, handled

META = Metadata(actor=Actor.system(), service="test")


async def demo_seen(pool: asyncpg.Pool) -> int:
    return int(await pool.fetchval("SELECT coalesce(sum(seen), 0) FROM demo.totals"))


async def fill(deps: Deps, count: int, *, slow_s: float = 0.0) -> None:
    """`count` events whose handler takes `slow_s` on its first two runs (live, then replay)."""
    event = Flaky(slow_times=2, slow_s=slow_s)
    for i in range(count):
        await deps.store.append(f"f-{i % 40}", [event], expected_version=ANY, metadata=META)


async def test_other_services_receive_events_while_a_replay_runs(
    settings: Settings, database_url: str, nats_url: str
) -> None:
    async with isolated_system(settings, database_url, nats_url, services=(FAULTY, DEMO)) as deps:
        await fill(deps, 100, slow_s=0.03)  # a replay of about three seconds
        await eventually(lambda: handled(deps.pool), until=lambda h: len(h) == 100, timeout=60)
        replay = asyncio.create_task(replay_service(FAULTY, deps))
        await deps.store.append("d-1", [Counted(n=5)], expected_version=ANY, metadata=META)
        await eventually(lambda: demo_seen(deps.pool), until=lambda n: n >= 1, timeout=30)
        assert not replay.done(), "the replay was over before the event arrived: make it longer"
        assert await replay >= 100


async def test_a_replay_finishes_under_live_load_and_equals_live_handling(
    settings: Settings, database_url: str, nats_url: str
) -> None:
    async with isolated_system(settings, database_url, nats_url, services=(FAULTY,)) as deps:
        await fill(deps, 200)
        await eventually(lambda: handled(deps.pool), until=lambda h: len(h) == 200, timeout=60)
        stop = asyncio.Event()

        async def live_load() -> int:
            written = 0
            while not stop.is_set():
                await deps.store.append(
                    f"c-{written % 30}", [Counted(n=1)], expected_version=ANY, metadata=META
                )
                written += 1
                await asyncio.sleep(0.005)
            return written

        load = asyncio.create_task(live_load())
        await asyncio.sleep(0.2)
        replayed = await replay_service(FAULTY, deps)
        stop.set()
        written = await load
        assert replayed >= 200
        total = 200 + written
        rows = await eventually(lambda: handled(deps.pool), until=lambda h: len(h) >= total)
        assert len(rows) == total
        assert max(Tally(rows).values()) == 1  # nothing applied twice
        assert await list_parked(deps.pool) == []
