"""Adversarial tests of the event runtime: each one shows a defect found by attacking it (real
Postgres and NATS, no mocks of either). See the docstring of each test for the scenario."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from collections.abc import Sequence
from datetime import tzinfo
from pathlib import Path
from typing import cast

import asyncpg
import nats
import pytest
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js.api import ConsumerConfig, DeliverPolicy
from prometheus_client import REGISTRY as METRICS

from libs.events.consumer_loop import ConsumerLoop
from libs.events.consumers import Consumer, Dispatcher, HandlerContext, list_parked
from libs.events.envelope import Actor, Envelope, Metadata
from libs.events.runtime import Deps, Service
from libs.events.settings import Settings
from libs.events.store import ANY, NO_STREAM, dump_envelope
from libs.events.supervisor import Supervisor, TaskStatus
from libs.events.system import System
from libs.events.testing import eventually, isolated_system
from tests.events_for_tests import Counted
from tests.faulty_service import FAULTY, attempts, count_attempt, handled, on_flaky, record

META = Metadata(actor=Actor.system(), service="test")
ROOT = Path(__file__).resolve().parent.parent

# What the adversarial handler does, chosen by the Counted event's `n`.
CANCELS_ONCE = -1
"""Raises CancelledError on its first run (it awaits a future someone else cancelled)."""
FILE_MISSING = -2
"""Always raises FileNotFoundError (a bug of the handler, not a lost database connection)."""
SWALLOWS_SQL_ERROR = -3
"""Runs a statement that fails, swallows the error and returns (its transaction is aborted)."""
BROKEN_REPR = -5
"""Raises an exception whose repr() itself raises (a library exception with a buggy __repr__)."""


class BrokenRepr(Exception):
    def __repr__(self) -> str:
        raise AttributeError("'BrokenRepr' object has no attribute 'detail'")

    __str__ = __repr__


async def on_counted(ctx: HandlerContext, event: Counted) -> None:
    url = ctx.settings.database_url or ""
    if event.n == CANCELS_ONCE:
        if await count_attempt(url, ctx.envelope.id) == 1:
            cancelled: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            cancelled.cancel()
            await cancelled
    elif event.n == FILE_MISSING:
        await count_attempt(url, ctx.envelope.id)
        raise FileNotFoundError("/etc/opsledger/template.txt")
    elif event.n == SWALLOWS_SQL_ERROR:
        await count_attempt(url, ctx.envelope.id)
        with contextlib.suppress(asyncpg.PostgresError):
            await ctx.conn.execute("SELECT 1 / 0")
        return
    elif event.n == BROKEN_REPR:
        await count_attempt(url, ctx.envelope.id)
        raise BrokenRepr()
    await record(ctx)


ADV_CONSUMER = Consumer(
    name="adv",
    handlers={"test.counted": on_counted, "test.flaky": on_flaky},
    tables=("faulty.handled",),
)
ADV = Service(name="faulty", consumers=[ADV_CONSUMER], migrations_dir=FAULTY.migrations_dir)
TABLES_ONLY = Service(name="faulty", migrations_dir=FAULTY.migrations_dir)


def deployment(
    settings: Settings,
    database_url: str,
    nats_url: str,
    *,
    services: Sequence[Service] = (ADV,),
    relay: bool = False,
    timers: bool = False,
    replica: str = "r1",
    **overrides: object,
) -> System:
    tuned = settings.model_copy(update=overrides) if overrides else settings
    return isolated_system(
        tuned,
        database_url,
        nats_url,
        services=services,
        relay=relay,
        timers=timers,
        replica=replica,
    )


async def publish(deps: Deps, settings: Settings, *envelopes: Envelope) -> None:
    """Put envelopes on the bus by hand, in this order (the relay is off)."""
    for envelope in envelopes:
        await deps.js.publish(settings.event_subject(envelope.type), dump_envelope(envelope))


def restarts(task: str) -> float:
    return METRICS.get_sample_value("opsledger_task_restarts_total", {"task": task}) or 0.0


async def attempts_counted(pool: asyncpg.Pool, consumer: str = "adv") -> int:
    return int(
        await pool.fetchval(
            "SELECT coalesce(sum(attempts), 0) FROM eventstore.consumer_attempts "
            "WHERE consumer = $1",
            consumer,
        )
    )


async def fetch_by_hand(
    nats_url: str, settings: Settings, count: int
) -> tuple[NatsClient, list[Msg]]:
    """`count` messages of the events stream through a consumer of our own, unacked."""
    nc = await nats.connect(nats_url)
    sub = await nc.jetstream().pull_subscribe(
        settings.event_subject_filter(),
        durable="by-hand",
        stream=settings.stream_name,
        config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL),
    )
    got: list[Msg] = []
    deadline = time.monotonic() + 10
    while len(got) < count and time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            got += await sub.fetch(count - len(got), timeout=1)
    return nc, got


# --- the supervisor ---------------------------------------------------------------------------


async def test_a_task_that_raises_cancelled_error_from_inside_is_restarted() -> None:
    """A CancelledError that does not come from stopping the task (a future someone else
    cancelled, a library leaking one) ends the supervised task for good, while its state stays
    'up': nothing is logged, counted or restarted, and /readyz says all is well."""
    supervisor = Supervisor()
    runs: list[int] = []

    async def leaky(status: TaskStatus) -> None:
        runs.append(len(runs))
        status.up()
        if len(runs) == 1:
            cancelled: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            cancelled.cancel()
            await cancelled
        await status.stopping.wait()

    supervisor.start("leaky", leaky)
    try:
        await eventually(lambda: asyncio.sleep(0, result=len(runs)), until=lambda n: n >= 2)
    finally:
        await supervisor.stop()


async def test_stop_returns_within_its_timeout_when_a_task_ignores_cancellation() -> None:
    """stop(timeout) waits `timeout`, cancels, then awaits the cancelled tasks without any bound:
    one task that does not end on cancellation (a cleanup that awaits a hung server, a handler
    that swallows CancelledError) makes System.stop() hang forever."""
    supervisor = Supervisor()
    released = asyncio.Event()

    async def stubborn(status: TaskStatus) -> None:
        status.up()
        while not released.is_set():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.sleep(3600)

    supervisor.start("stubborn", stubborn)
    await asyncio.sleep(0.05)
    stopping = asyncio.create_task(supervisor.stop(timeout=0.2))
    done, _ = await asyncio.wait({stopping}, timeout=3)
    released.set()
    for task in asyncio.all_tasks():
        if task.get_name() == "stubborn":
            task.cancel()
    await stopping
    assert done, "Supervisor.stop(timeout=0.2) was still waiting after 3 s"


# --- consumers --------------------------------------------------------------------------------


async def test_a_handler_raising_cancelled_error_does_not_end_the_consumer_quietly(
    settings: Settings, database_url: str, nats_url: str
) -> None:
    """run_handler catches Exception only: a CancelledError out of a handler (it awaited a task or
    future cancelled elsewhere) goes through apply_batch, handle_batch and the loop, and ends the
    consumer's supervised task without a trace (its state stays 'up'). No later event is
    handled by this replica."""
    async with deployment(settings, database_url, nats_url) as deps:
        [bad] = await deps.store.append(
            "a-1", [Counted(n=CANCELS_ONCE)], expected_version=NO_STREAM, metadata=META
        )
        await publish(deps, settings, bad)
        await eventually(
            lambda: deps.pool.fetchval("SELECT count(*) FROM faulty.attempts"),
            until=lambda n: n >= 1,
        )
        await asyncio.sleep(0.5)
        [good] = await deps.store.append(
            "a-2", [Counted(n=1)], expected_version=NO_STREAM, metadata=META
        )
        await publish(deps, settings, good)
        try:
            await eventually(
                lambda: handled(deps.pool), until=lambda h: ("a-2", 1) in h, timeout=15
            )
        except AssertionError:
            states = {t.name: t.state for t in deps.supervisor.states()}
            raise AssertionError(
                f"a healthy event was not handled in 15 s; reported task states {states}, "
                f"restarts of 'consumer adv': {restarts('consumer adv')}"
            ) from None


async def test_a_handler_failing_with_file_not_found_is_counted_and_parked(
    settings: Settings, database_url: str, nats_url: str
) -> None:
    """is_connection_error() says True for every OSError, so a handler's own deterministic bug
    (FileNotFoundError, PermissionError, IsADirectoryError...) is taken for a lost database
    connection: never counted, never parked, redelivered forever."""
    async with deployment(settings, database_url, nats_url, handler_max_attempts=2) as deps:
        [bad] = await deps.store.append(
            "a-1", [Counted(n=FILE_MISSING)], expected_version=NO_STREAM, metadata=META
        )
        await publish(deps, settings, bad)
        try:
            parked = await eventually(lambda: list_parked(deps.pool), timeout=15)
        except AssertionError:
            raise AssertionError(
                f"not parked after 15 s; the handler ran "
                f"{await attempts(deps.pool, bad.id)} times, attempts counted in the store: "
                f"{await attempts_counted(deps.pool)}"
            ) from None
        assert [p.event_id for p in parked] == [bad.id]


async def test_a_handler_error_whose_repr_fails_is_still_counted_and_parked(
    settings: Settings, database_url: str, nats_url: str
) -> None:
    """HandlerFailed's message is built with repr(cause) inside run_handler's except block: if
    that repr raises, the new exception (not a HandlerFailed) reaches the loop, which takes any
    non-HandlerFailed exception for a store failure: never counted, never parked, forever."""
    async with deployment(settings, database_url, nats_url, handler_max_attempts=2) as deps:
        [bad] = await deps.store.append(
            "a-1", [Counted(n=BROKEN_REPR)], expected_version=NO_STREAM, metadata=META
        )
        await publish(deps, settings, bad)
        parked = await eventually(lambda: list_parked(deps.pool), timeout=15)
        assert [p.event_id for p in parked] == [bad.id]


async def test_a_handler_that_swallows_a_sql_error_is_blamed_not_the_next_event(
    settings: Settings, database_url: str, nats_url: str
) -> None:
    """A handler that catches a failed statement (a common `except UniqueViolationError: pass`)
    leaves the transaction aborted. In a batch, the failure surfaces in the NEXT event's handler,
    which is counted and (at its last attempt) parked though healthy, and never handled; alone,
    it surfaces in save_checkpoints, is taken for a store failure and retried forever uncounted."""
    async with deployment(
        settings, database_url, nats_url, services=(TABLES_ONLY,), handler_max_attempts=1
    ) as deps:
        [bad] = await deps.store.append(
            "a-bad", [Counted(n=SWALLOWS_SQL_ERROR)], expected_version=NO_STREAM, metadata=META
        )
        [good] = await deps.store.append(
            "a-good", [Counted(n=1)], expected_version=NO_STREAM, metadata=META
        )
        await publish(deps, settings, bad, good)
        nc, msgs = await fetch_by_hand(nats_url, settings, 2)
        try:
            assert len(msgs) == 2
            loop = ConsumerLoop(deps=deps, dispatcher=ADV.dispatchers(deps)["adv"])
            await loop.handle_batch(msgs)
        finally:
            await nc.close()
        parked = await list_parked(deps.pool)
        assert good.id not in [p.event_id for p in parked], "the healthy event was parked"
        assert await handled(deps.pool) == [("a-good", 1)]
        assert [p.event_id for p in parked] == [bad.id]


async def stream_messages(deps: Deps, settings: Settings) -> int:
    return int((await deps.js.stream_info(settings.stream_name)).state.messages)


async def test_a_batch_of_slow_but_healthy_handlers_does_not_hold_the_read_horizon(
    settings: Settings, database_url: str, nats_url: str
) -> None:
    """A fetched batch (up to 64 messages) commits as ONE transaction, which holds a transaction
    id from its first statement: the server-wide read horizon stays behind it for the sum of its
    handlers' durations (64 x handler_timeout_s in the worst case), and the relay publishes
    nothing for ANY service meanwhile. Replay bounds its transactions to ~0.1 s; the live batch
    is unbounded. Here 64 handlers of 0.12 s hold every other event back for ~8 s."""
    from tests.events_for_tests import Flaky

    async with deployment(settings, database_url, nats_url, services=(), relay=True) as deps:
        for i in range(64):
            await deps.store.append(
                f"slow-{i}",
                [Flaky(slow_times=1, slow_s=0.12)],
                expected_version=NO_STREAM,
                metadata=META,
            )
        await eventually(lambda: stream_messages(deps, settings), until=lambda n: n == 64)
    async with deployment(
        settings, database_url, nats_url, services=(FAULTY,), relay=True, replica="r2"
    ) as deps:
        # the consumer is inside its first batch once two handlers have run
        await eventually(
            lambda: deps.pool.fetchval("SELECT count(*) FROM faulty.attempts"),
            until=lambda n: n >= 2,
        )
        assert len(await handled(deps.pool)) < 10, "the batch committed early: make it slower"
        written = time.monotonic()
        await deps.store.append("probe", [Counted(n=1)], expected_version=NO_STREAM, metadata=META)
        await eventually(lambda: stream_messages(deps, settings), until=lambda n: n == 65)
        took = time.monotonic() - written
        assert took < 2.0, f"an unrelated event waited {took:.1f} s for the relay"


async def test_one_event_too_big_for_the_bus_does_not_stop_the_relay_for_good(
    settings: Settings, database_url: str, nats_url: str
) -> None:
    """The store takes an event of any size; NATS refuses a payload above max_payload (1 MB by
    default). The relay's batch fails, the supervisor restarts it, it reads the same batch and
    fails again, forever: nothing more than the first batch around it is ever published, for
    any service. (Refusing the event at append time, a StoreError, is a fine outcome too.)"""
    from libs.events.store import StoreError
    from tests.events_for_tests import Renamed

    async with deployment(settings, database_url, nats_url, services=(FAULTY,), relay=True) as deps:
        limit = deps.nc.max_payload
        with contextlib.suppress(StoreError):
            await deps.store.append(
                "big-1",
                [Renamed(first="x" * (limit + 1000), last="y")],
                expected_version=NO_STREAM,
                metadata=META,
            )
        await deps.store.append(
            "after-big",
            [Counted(n=i) for i in range(600)],
            expected_version=NO_STREAM,
            metadata=META,
        )

        async def handled_count() -> int:
            return int(await deps.pool.fetchval("SELECT count(*) FROM faulty.handled"))

        try:
            await eventually(handled_count, until=lambda n: n == 600, timeout=20)
        except AssertionError:
            relay = [s.to_dict() for s in deps.supervisor.states() if s.name == "relay"]
            raise AssertionError(
                f"{await handled_count()} of 600 events handled, "
                f"{await stream_messages(deps, settings)} published; relay: {relay}"
            ) from None


async def test_a_message_not_in_the_store_does_not_move_the_checkpoint_past_real_events(
    settings: Settings, database_url: str, nats_url: str
) -> None:
    """The delivered envelope is trusted as it came off the bus: a message whose event is not in
    the store (forged by anyone who can publish on the subject, or left on the bus by another
    deployment or a restored database) is handled with the bus's data and moves the checkpoint
    to its version, so the real events up to that version are skipped as repeats: lost."""
    from datetime import UTC, datetime
    from uuid import uuid4

    async with deployment(settings, database_url, nats_url) as deps:
        [v1] = await deps.store.append(
            "f-1", [Counted(n=1)], expected_version=NO_STREAM, metadata=META
        )
        await publish(deps, settings, v1)
        await eventually(lambda: handled(deps.pool))
        forged = Envelope(
            id=uuid4(),
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

        async def handled_ids() -> set[object]:
            return {
                r["event_id"] for r in await deps.pool.fetch("SELECT event_id FROM faulty.handled")
            }

        seen = await eventually(
            handled_ids, until=lambda ids: {v2.id, v3.id} <= ids or forged.id in ids, timeout=10
        )
        assert forged.id not in seen, "an event that is not in the store was handled"
        assert {v1.id, v2.id, v3.id} <= await handled_ids()


async def test_retrying_a_parked_event_while_a_replay_starts_does_not_deadlock(
    settings: Settings, database_url: str, nats_url: str
) -> None:
    """retry_parked claims the parked row (FOR UPDATE) and runs the handler, but does not take
    the consumer's replay lock. A replay starting meanwhile truncates the projection, then waits
    for the claimed row; the retried handler then waits for the truncated table: a deadlock,
    which Postgres breaks by failing one of them (DeadlockDetectedError)."""
    from libs.events.consumers import retry_parked
    from libs.events.replay import replay_service
    from tests.events_for_tests import Flaky

    async with deployment(
        settings, database_url, nats_url, services=(FAULTY,), relay=True, handler_max_attempts=1
    ) as deps:
        [bad] = await deps.store.append(
            "f-1",
            [Flaky(fail_times=1, slow_times=2, slow_s=1.0)],
            expected_version=NO_STREAM,
            metadata=META,
        )
        await eventually(lambda: list_parked(deps.pool), timeout=10)
        dispatchers = FAULTY.dispatchers(deps)
        retry = asyncio.create_task(retry_parked(deps.pool, dispatchers, bad.id))
        await asyncio.sleep(0.3)  # the retry holds its parked row and is in the slow handler
        replay = asyncio.create_task(replay_service(FAULTY, deps))
        outcomes = await asyncio.wait_for(
            asyncio.gather(retry, replay, return_exceptions=True), timeout=20
        )
        failures = [o for o in outcomes if isinstance(o, BaseException)]
        assert failures == [], f"retry / replay failed: {failures!r}"


# --- timers -----------------------------------------------------------------------------------


async def test_timers_do_not_spin_when_this_host_clock_is_ahead_of_postgres(
    settings: Settings, database_url: str, nats_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The scheduler asks Postgres for the next due time but subtracts THIS host's clock: with
    the host a few seconds ahead of the database server, the delay is 0 while Postgres still
    says not due, and the scheduler spins (two queries per turn, a full CPU) until the
    database clock catches up."""
    from datetime import UTC, datetime, timedelta

    from libs.events import timers as timers_module
    from libs.events.timers import TimerScheduler, schedule

    class AheadClock(datetime):
        @classmethod
        def now(cls, tz: tzinfo | None = None) -> AheadClock:
            real = datetime.now(tz)
            return cast(AheadClock, real + timedelta(seconds=3))

    async with deployment(settings, database_url, nats_url, services=()) as deps:
        async with deps.pool.acquire() as conn:
            await schedule(
                deps.store,
                conn,
                due_at=datetime.now(UTC) + timedelta(seconds=2.5),
                target_stream="t-1",
                event=Counted(n=1),
                metadata=META,
            )
        turns = 0

        class Counting(TimerScheduler):
            async def fire_due(self) -> int:
                nonlocal turns
                turns += 1
                return await super().fire_due()

        monkeypatch.setattr(timers_module, "datetime", AheadClock)
        supervisor = Supervisor()
        supervisor.start("timers", Counting(store=deps.store, database_url=database_url).run)
        await asyncio.sleep(1.5)
        await supervisor.stop()
        assert turns < 20, f"{turns} scheduler turns in 1.5 s with nothing due"


async def test_a_timer_whose_target_stream_is_locked_does_not_hold_up_the_other_timers(
    settings: Settings, database_url: str, nats_url: str
) -> None:
    """fire_due fires its claimed timers one after another in ONE transaction. A target stream
    with an uncommitted append (a command waiting on something, another application, a BEGIN
    in psql) makes that timer's append wait on the unique index, and every other due timer
    claimed in the same batch waits with it, however long that transaction lasts."""
    from datetime import UTC, datetime, timedelta

    from libs.events.timers import schedule

    async with deployment(settings, database_url, nats_url, services=(), timers=True) as deps:
        blocker = await asyncpg.connect(database_url)
        try:
            transaction = blocker.transaction()
            await transaction.start()
            await blocker.execute("SET LOCAL application_name = 'psql'")
            await deps.store.append(
                "t-locked",
                [Counted(n=0)],
                expected_version=ANY,
                metadata=META,
                conn=blocker,
            )
            due = datetime.now(UTC) + timedelta(seconds=0.3)
            async with deps.pool.acquire() as conn:
                for i, target in enumerate(("t-locked", "t-free")):
                    await schedule(
                        deps.store,
                        conn,
                        due_at=due + timedelta(milliseconds=i),
                        target_stream=target,
                        event=Counted(n=1),
                        metadata=META,
                    )
            await eventually(lambda: deps.store.read_stream("t-free"), timeout=5)
        finally:
            with contextlib.suppress(Exception):
                await transaction.rollback()
            await blocker.close()


async def test_a_timer_whose_target_append_conflicts_is_not_marked_fired_unfired(
    settings: Settings, database_url: str, nats_url: str
) -> None:
    """_fire catches ConcurrencyError around BOTH appends and reads it as 'already fired or
    cancelled': a ConcurrencyError of the TARGET append (here its deterministic event id is
    taken in another stream; also 100 lost races on a hot stream) rolls back the savepoint and
    the timer is then marked 'fired' although nothing was appended: not fired, not parked."""
    from datetime import UTC, datetime, timedelta
    from uuid import uuid4, uuid5

    from libs.events.timers import list_parked_timers, schedule

    async with deployment(settings, database_url, nats_url, services=(), timers=True) as deps:
        timer_id = uuid4()
        await deps.store.append(
            "elsewhere",
            [Counted(n=0)],
            expected_version=NO_STREAM,
            metadata=META,
            ids=[uuid5(timer_id, "fired-event")],
        )
        async with deps.pool.acquire() as conn:
            await schedule(
                deps.store,
                conn,
                due_at=datetime.now(UTC) + timedelta(seconds=0.2),
                target_stream="t-target",
                event=Counted(n=1),
                metadata=META,
                timer_id=timer_id,
            )

        async def state() -> str:
            return str(
                await deps.pool.fetchval(
                    "SELECT state FROM eventstore.timers WHERE timer_id = $1", timer_id
                )
            )

        final = await eventually(state, until=lambda s: s != "pending", timeout=15)
        fired = await deps.store.read_stream("t-target")
        parked = [t.timer_id for t in await list_parked_timers(deps.pool)]
        assert fired or timer_id in parked, (
            f"timer state {final!r}, nothing appended to its target, not parked"
        )


async def test_an_interrupted_replay_keeps_the_parked_list_and_the_projection_whole(
    settings: Settings, database_url: str, nats_url: str
) -> None:
    """_reset truncates the projection, deletes the checkpoints and marks every parked event
    resolved up front, in its own transaction; the rebuild follows in many. A replay that does
    not finish (Ctrl-C on `opsledger replay`, the process killed, a lost connection) leaves the
    projection missing every stream it had not reached (nothing rebuilds a stream until it gets
    a new event) and the parked list empty, though those events were never run again. Nothing
    records that a replay is unfinished."""
    from libs.events.replay import replay_service
    from tests.events_for_tests import Flaky

    async with deployment(settings, database_url, nats_url, services=(FAULTY,), relay=True) as deps:
        for i in range(40):
            await deps.store.append(
                f"f-{i}",
                [Flaky(slow_times=2, slow_s=0.05)],  # slow live once, then in the replay
                expected_version=NO_STREAM,
                metadata=META,
            )
        [bad] = await deps.store.append(
            "f-bad", [Flaky(fail_times=99)], expected_version=NO_STREAM, metadata=META
        )
        await eventually(lambda: handled(deps.pool), until=lambda h: len(h) == 40, timeout=30)
        await eventually(lambda: list_parked(deps.pool), timeout=20)
        replay = asyncio.create_task(replay_service(FAULTY, deps))
        await eventually(lambda: handled(deps.pool), until=lambda h: 5 <= len(h) < 30)
        replay.cancel()  # the operator's Ctrl-C
        with contextlib.suppress(asyncio.CancelledError):
            await replay
        parked = [p.event_id for p in await list_parked(deps.pool)]
        assert bad.id in parked, "the interrupted replay emptied the parked list"
        try:
            await eventually(lambda: handled(deps.pool), until=lambda h: len(h) == 40, timeout=10)
        except AssertionError:
            rebuilt = len(await handled(deps.pool))
            raise AssertionError(
                f"10 s after the interrupted replay, {rebuilt} of 40 streams are in the projection"
            ) from None


async def test_a_relay_that_cannot_move_is_not_reported_up(
    settings: Settings, database_url: str, nats_url: str
) -> None:
    """A task counts as healthy from its first status.up() on, whatever it does after: nothing
    checks that an 'up' task still makes progress, so /readyz (which reports supervisor.down()
    and the horizon) says 'ready'. Here an operator's LOCK TABLE on the events table (it takes no
    transaction id, so the horizon check sees nothing) stalls every append and the relay, for as
    long as it lasts; the relay stays 'up'. (A task that died of a CancelledError, above, stays
    'up' the same way.)"""
    async with deployment(settings, database_url, nats_url, relay=True) as deps:
        await eventually(
            lambda: asyncio.sleep(0, result=deps.supervisor.down()), until=lambda d: d == []
        )
        locker = await asyncpg.connect(database_url, server_settings={"application_name": "psql"})
        transaction = locker.transaction()
        await transaction.start()
        stuck: asyncio.Task[list[Envelope]] | None = None
        try:
            await locker.execute("LOCK TABLE eventstore.events IN ACCESS EXCLUSIVE MODE")
            stuck = asyncio.create_task(
                deps.store.append("c-1", [Counted(n=1)], expected_version=NO_STREAM, metadata=META)
            )
            await asyncio.sleep(1.0)
            assert not stuck.done(), "the append was not held up by the lock"
            down = await eventually(
                lambda: asyncio.sleep(0, result=[s.name for s in deps.supervisor.down()]),
                until=lambda names: "relay" in names,
                timeout=20,
            )
            assert "relay" in down
        finally:
            await transaction.rollback()
            await locker.close()
            if stuck is not None:
                await stuck


KILLS_THE_PROCESS = -4
CRASHING_WORKER = f"""
import asyncio, os, signal, sys
from libs.events import consumer_loop
from libs.events.consumers import Consumer
from libs.events.runtime import Service
from libs.events.settings import Settings
from libs.events.testing import isolated_system
from tests.faulty_service import FAULTY, record

consumer_loop.ACK_WAIT_S = 1.0  # a dead worker's message comes back after 1 s, not 60 s


async def on_counted(ctx, event):
    if event.n == {KILLS_THE_PROCESS}:
        os.kill(os.getpid(), signal.SIGKILL)  # the OOM killer, a segfault in a C extension
    await record(ctx)


SERVICE = Service(
    name="faulty",
    consumers=[Consumer(name="crashy", handlers={{"test.counted": on_counted}})],
    migrations_dir=FAULTY.migrations_dir,
)


async def main():
    settings = Settings()
    system = isolated_system(
        settings, settings.database_url, settings.nats_url, services=[SERVICE], relay=False,
        replica=sys.argv[1],
    )
    async with system:
        await asyncio.sleep(60)


asyncio.run(main())
"""


async def test_an_event_that_kills_the_worker_is_parked_after_its_attempts(
    settings: Settings, database_url: str, nats_url: str
) -> None:
    """Attempts are counted only after a handler's failure comes back to the loop. An event whose
    handler takes the whole process down (OOM-killed, a segfault, os._exit) is never counted:
    every restarted worker gets it again and dies again, forever, and it is never parked."""
    root = ROOT
    env = {
        **os.environ,
        "PYTHONPATH": str(root),
        "OPSLEDGER_ENV": "test",
        "OPSLEDGER_DATABASE_URL": database_url,
        "OPSLEDGER_NATS_URL": nats_url,
        "OPSLEDGER_NAMESPACE": settings.namespace,
        "OPSLEDGER_DATA_DIR": str(settings.data_dir),
        "OPSLEDGER_HANDLER_MAX_ATTEMPTS": "3",
    }
    async with deployment(
        settings, database_url, nats_url, services=(TABLES_ONLY,), relay=True
    ) as deps:
        [bad] = await deps.store.append(
            "k-1", [Counted(n=KILLS_THE_PROCESS)], expected_version=NO_STREAM, metadata=META
        )
        crashes = 0
        parked: list[object] = []
        for run in range(6):
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-c",
                CRASHING_WORKER,
                f"w{run}",
                env=env,
                cwd=root,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
            )
            deadline = time.monotonic() + 10
            while proc.returncode is None and not parked and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
                parked = [p.event_id for p in await list_parked(deps.pool)]
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
            elif proc.returncode == -9:
                crashes += 1
            if parked:
                break
        assert parked == [bad.id], f"the event killed {crashes} workers and was never parked"


async def test_appends_to_look_alike_streams_in_one_handler_run_get_distinct_ids(
    settings: Settings, database_url: str, nats_url: str
) -> None:
    """HandlerContext.append derives ids from f"{consumer}/{stream}{'#n' for the n-th append}/{i}":
    appending to stream 'out#1' first and then to 'out' gives the second append the first's ids,
    so it fails (unique id) on every run and the event ends up parked. ('/' in a consumer name
    collides the same way across consumers: 'a' appending to 'b/c' and 'a/b' appending to 'c'.)"""

    async def fan_out(ctx: HandlerContext, _: Counted) -> None:
        await ctx.append("out#1", [Counted(n=1)], expected_version=NO_STREAM)
        await ctx.append("out", [Counted(n=2)], expected_version=NO_STREAM)

    consumer = Consumer(name="fan-out", handlers={"test.counted": fan_out}, replayable=False)
    async with deployment(settings, database_url, nats_url, services=(TABLES_ONLY,)) as deps:
        [cause] = await deps.store.append(
            "cmd-1", [Counted(n=0)], expected_version=NO_STREAM, metadata=META
        )
        dispatcher = Dispatcher(
            consumer=consumer, service="faulty", store=deps.store, settings=deps.settings
        )
        async with deps.store.transaction() as conn:
            await dispatcher.run_handler(conn, cause)
        assert len(await deps.store.read_stream("out#1")) == 1
        assert len(await deps.store.read_stream("out")) == 1
