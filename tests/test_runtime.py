"""The relay and the service runtime on real Postgres and NATS: delivery, redelivery, replicas,
gaps, parking, replay."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence

from nats.js.api import ConsumerConfig, DeliverPolicy

from libs.events.consumers import list_parked, retry_parked
from libs.events.envelope import Actor, Metadata
from libs.events.replay import replay_service
from libs.events.runtime import Deps, Service
from libs.events.settings import Settings
from libs.events.store import ANY, NO_STREAM, dump_envelope
from libs.events.system import System
from libs.events.testing import eventually, isolated_system
from tests.demo_service import DEMO
from tests.events_for_tests import Counted, Poison

META = Metadata(actor=Actor.system(), service="test")


def make_system(
    settings: Settings,
    database_url: str,
    nats_url: str,
    *,
    services: Sequence[Service] = (DEMO,),
    replica: str = "r1",
    relay: bool = True,
    timers: bool = False,
) -> System:
    return isolated_system(
        settings,
        database_url,
        nats_url,
        services=services,
        replica=replica,
        relay=relay,
        timers=timers,
    )


async def totals(deps: Deps) -> dict[str, tuple[int, int]]:
    rows = await deps.pool.fetch("SELECT stream_id, total, seen FROM demo.totals")
    return {r["stream_id"]: (r["total"], r["seen"]) for r in rows}


async def test_relay_publishes_each_event_with_its_id_as_the_message_id(
    settings: Settings, database_url: str, nats_url: str
) -> None:
    async with make_system(settings, database_url, nats_url, services=()) as deps:
        written = await deps.store.append(
            "c-1",
            [Counted(n=1), Counted(n=2), Counted(n=3)],
            expected_version=NO_STREAM,
            metadata=META,
        )
        sub = await deps.js.pull_subscribe(
            settings.event_subject_filter(),
            stream=settings.stream_name,
            config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL),
        )
        msgs = await sub.fetch(3, timeout=5)
        assert [m.headers["Nats-Msg-Id"] for m in msgs if m.headers] == [str(e.id) for e in written]
        assert [json.loads(m.data)["version"] for m in msgs] == [1, 2, 3]
        assert msgs[0].subject == settings.event_subject("test.counted")


async def test_events_committed_while_no_relay_runs_are_delivered_when_it_starts(
    settings: Settings, database_url: str, nats_url: str
) -> None:
    """A crash between commit and publish loses nothing: the relay resumes from its checkpoint."""
    async with make_system(settings, database_url, nats_url, relay=False) as deps:
        for i in range(5):
            await deps.store.append("c-1", [Counted(n=i)], expected_version=ANY, metadata=META)
        await asyncio.sleep(0.3)
        assert await totals(deps) == {}
        async with make_system(settings, database_url, nats_url, services=(), replica="relay"):
            assert await eventually(lambda: totals(deps), until=lambda t: t == {"c-1": (10, 5)})


async def test_relay_that_lost_its_checkpoint_republishes_without_double_effects(
    settings: Settings, database_url: str, nats_url: str
) -> None:
    async with make_system(settings, database_url, nats_url) as deps:
        await deps.store.append("c-1", [Counted(n=5)], expected_version=NO_STREAM, metadata=META)
        await eventually(lambda: totals(deps), until=lambda t: t == {"c-1": (5, 1)})
    async with make_system(settings, database_url, nats_url, relay=False) as deps:
        await deps.pool.execute("DELETE FROM eventstore.relay_checkpoint")
    async with make_system(settings, database_url, nats_url) as deps:
        await deps.store.append("c-1", [Counted(n=1)], expected_version=1, metadata=META)
        await eventually(lambda: totals(deps), until=lambda t: t == {"c-1": (6, 2)})
        info = await deps.js.stream_info(settings.stream_name)
        assert info.state.messages == 2  # the republished first event was dropped as a duplicate


async def test_a_redelivered_event_changes_the_projection_once(
    settings: Settings, database_url: str, nats_url: str
) -> None:
    async with make_system(settings, database_url, nats_url) as deps:
        [env] = await deps.store.append(
            "c-1", [Counted(n=3)], expected_version=NO_STREAM, metadata=META
        )
        await eventually(lambda: totals(deps), until=lambda t: t == {"c-1": (3, 1)})
        # the same event again, under another message id so JetStream cannot drop it
        await deps.js.publish(settings.event_subject(env.type), dump_envelope(env))
        await deps.js.publish(settings.event_subject(env.type), dump_envelope(env))
        await deps.store.append("c-1", [Counted(n=4)], expected_version=1, metadata=META)
        assert await eventually(lambda: totals(deps), until=lambda t: t == {"c-1": (7, 2)})


async def test_an_event_after_a_gap_fetches_the_missing_ones_from_the_store(
    settings: Settings, database_url: str, nats_url: str
) -> None:
    async with make_system(settings, database_url, nats_url, relay=False) as deps:
        written = await deps.store.append(
            "c-1",
            [Counted(n=1), Counted(n=10), Counted(n=100)],
            expected_version=NO_STREAM,
            metadata=META,
        )
        await deps.js.publish(settings.event_subject("test.counted"), dump_envelope(written[2]))
        assert await eventually(lambda: totals(deps), until=lambda t: t == {"c-1": (111, 3)})
        await deps.js.publish(settings.event_subject("test.counted"), dump_envelope(written[0]))
        await asyncio.sleep(0.3)
        assert await totals(deps) == {"c-1": (111, 3)}


async def test_two_replicas_share_a_consumer_and_handle_each_event_once(
    settings: Settings, database_url: str, nats_url: str
) -> None:
    async with (
        make_system(settings, database_url, nats_url, replica="r1") as deps,
        make_system(settings, database_url, nats_url, replica="r2", relay=False),
    ):
        for i in range(200):
            await deps.store.append(
                f"c-{i % 20}", [Counted(n=1)], expected_version=ANY, metadata=META
            )
            if i % 20 == 0:
                await asyncio.sleep(0.02)

        async def handled() -> int:
            return int(await deps.pool.fetchval("SELECT count(*) FROM demo.handled_by"))

        await eventually(handled, until=lambda n: n == 200)
        result = await totals(deps)
        assert sum(seen for _, seen in result.values()) == 200
        replicas = await deps.pool.fetch("SELECT DISTINCT replica FROM demo.handled_by")
        assert {r["replica"] for r in replicas} == {"r1", "r2"}


async def test_a_failing_handler_is_retried_then_parked_and_an_operator_can_retry_it(
    settings: Settings, database_url: str, nats_url: str
) -> None:
    async with make_system(settings, database_url, nats_url) as deps:
        await deps.store.append(
            "p-1", [Poison(fail_times=1)], expected_version=NO_STREAM, metadata=META
        )
        [bad] = await deps.store.append(
            "p-2", [Poison(fail_times=3)], expected_version=NO_STREAM, metadata=META
        )
        # the flaky one succeeds on its second attempt
        await eventually(lambda: totals(deps), until=lambda t: t.get("p-1") == (100, 1))
        parked = await eventually(lambda: list_parked(deps.pool), timeout=15)
        assert [(p.event_id, p.attempts) for p in parked] == [(bad.id, 3)]
        assert "poisoned" in parked[0].error
        # the stream is not blocked behind the parked event
        await deps.store.append("p-2", [Counted(n=1)], expected_version=1, metadata=META)
        await eventually(lambda: totals(deps), until=lambda t: t.get("p-2") == (1, 1))
        # an operator retries: the fourth attempt succeeds and the event leaves the parked list
        assert await retry_parked(deps.pool, DEMO.dispatchers(deps), bad.id) == 1
        assert await list_parked(deps.pool) == []
        assert (await totals(deps))["p-2"] == (101, 2)


async def test_replay_rebuilds_projections_equal_to_the_live_ones(
    settings: Settings, database_url: str, nats_url: str
) -> None:
    async with make_system(settings, database_url, nats_url) as deps:
        for i in range(60):
            await deps.store.append(
                f"c-{i % 7}", [Counted(n=i)], expected_version=ANY, metadata=META
            )

        async def handled() -> int:
            return int(await deps.pool.fetchval("SELECT count(*) FROM demo.handled_by"))

        await eventually(handled, until=lambda n: n == 60)
        live = await totals(deps)
        progress: list[tuple[int, int]] = []
        applied = await replay_service(DEMO, deps, progress=lambda d, t: progress.append((d, t)))
        assert applied == 60
        assert progress[-1] == (60, 60)
        assert await totals(deps) == live


async def test_a_poison_event_inside_a_batch_is_parked_alone_and_its_neighbours_are_kept(
    settings: Settings, database_url: str, nats_url: str
) -> None:
    async with make_system(settings, database_url, nats_url, relay=False) as deps:
        for i in range(20):
            await deps.store.append(f"c-{i}", [Counted(n=1)], expected_version=ANY, metadata=META)
        [bad] = await deps.store.append(
            "p-1", [Poison(fail_times=99)], expected_version=NO_STREAM, metadata=META
        )
        for i in range(20, 40):
            await deps.store.append(f"c-{i}", [Counted(n=1)], expected_version=ANY, metadata=META)
        # one relay start publishes all 41 at once, so the consumer fetches them as one batch
        async with make_system(settings, database_url, nats_url, services=(), replica="relay"):

            async def handled() -> int:
                return int(await deps.pool.fetchval("SELECT count(*) FROM demo.handled_by"))

            await eventually(handled, until=lambda n: n == 40, timeout=20)
            parked = await eventually(lambda: list_parked(deps.pool), timeout=20)
        assert [p.event_id for p in parked] == [bad.id]
        assert sum(seen for _, seen in (await totals(deps)).values()) == 40
