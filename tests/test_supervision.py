"""No long-running task ends quietly: killing a task's connection brings it back, a task that
fails is logged, counted, restarted with backoff and reported until it is up again."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import pytest
from prometheus_client import REGISTRY as METRICS

from libs.events.db import create_pool
from libs.events.envelope import Actor, Metadata
from libs.events.runtime import Service
from libs.events.settings import Settings
from libs.events.store import ANY, EventStore
from libs.events.supervisor import Supervisor, TaskState, TaskStatus
from libs.events.system import System
from libs.events.testing import eventually, isolated_system
from libs.events.timers import schedule
from tests.events_for_tests import Counted
from tests.faulty_service import FAULTY, handled
from tests.tcp_proxy import CuttableProxy

META = Metadata(actor=Actor.system(), service="test")


def restarts(task: str) -> float:
    return METRICS.get_sample_value("opsledger_task_restarts_total", {"task": task}) or 0.0


async def terminate(pool: asyncpg.Pool, application: str) -> int:
    """pg_terminate_backend every session of this database with that application_name."""
    return int(
        await pool.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND application_name = $1",
            application,
        )
    )


async def down(supervisor: Supervisor) -> list[TaskState]:
    return supervisor.down()


async def test_a_failing_task_is_restarted_with_backoff_counted_and_reported_until_up() -> None:
    supervisor = Supervisor()
    runs: list[int] = []

    async def flaky(status: TaskStatus) -> None:
        runs.append(len(runs))
        if len(runs) < 3:
            raise ConnectionResetError(f"run {len(runs)} lost its connection")
        status.up()
        await status.stopping.wait()

    before = restarts("flaky")
    supervisor.start("flaky", flaky)
    [state] = await eventually(
        lambda: down(supervisor), until=lambda tasks: any(t.last_error for t in tasks)
    )
    assert state.name == "flaky"
    assert state.last_error is not None and "ConnectionResetError" in state.last_error
    await eventually(lambda: down(supervisor), until=lambda tasks: tasks == [], timeout=5)
    assert len(runs) == 3
    assert restarts("flaky") - before == 2
    assert supervisor.states()[0].state == "up"
    await supervisor.stop()


async def test_a_long_running_task_that_returns_is_a_failure_and_a_one_shot_may_finish() -> None:
    supervisor = Supervisor()
    done = asyncio.Event()

    async def returns_early(_: TaskStatus) -> None:
        return None

    async def one_shot(status: TaskStatus) -> None:
        status.up()
        done.set()

    supervisor.start("returns", returns_early)
    supervisor.start("seed", one_shot, until_stopped=False)
    await done.wait()
    [failed] = await eventually(
        lambda: down(supervisor), until=lambda tasks: any(t.last_error for t in tasks)
    )
    assert failed.name == "returns"
    assert "returned" in (failed.last_error or "")
    assert {s.name: s.state for s in supervisor.states()}["seed"] == "finished"
    await supervisor.stop()


async def test_the_relay_comes_back_after_its_connection_is_killed_twice(
    settings: Settings, database_url: str, nats_url: str
) -> None:
    """Leader, then the replica that took over: nothing is stranded."""
    async with (
        isolated_system(settings, database_url, nats_url, services=(FAULTY,), replica="a") as a,
        isolated_system(settings, database_url, nats_url, services=(), replica="b") as b,
    ):
        before = restarts("relay")
        for round_ in range(2):
            leaders = await eventually(
                lambda: terminate(a.pool, "opsledger relay"), until=lambda n: n > 0
            )
            assert leaders >= 1
            for i in range(10):
                await a.store.append(
                    f"c-{round_}-{i}", [Counted(n=i)], expected_version=ANY, metadata=META
                )
            await eventually(lambda: handled(a.pool), until=has_length(10 * (round_ + 1)))
        assert restarts("relay") - before >= 2
        await eventually(lambda: _all_up(a.supervisor, b.supervisor))


def has_length(n: int) -> Callable[[list[tuple[str, int]]], bool]:
    return lambda items: len(items) == n


async def _all_up(*supervisors: Supervisor) -> bool:
    return all(not s.down() for s in supervisors)


async def test_consumers_come_back_after_every_database_connection_is_killed(
    settings: Settings, database_url: str, nats_url: str
) -> None:
    async with isolated_system(settings, database_url, nats_url, services=(FAULTY,)):
        writer = await create_pool(database_url, application="test writer")
        try:
            store = EventStore(writer)
            for i in range(20):
                await store.append(f"c-{i}", [Counted(n=i)], expected_version=ANY, metadata=META)
                if i % 5 == 0:
                    await terminate(writer, "opsledger r1")
            await eventually(lambda: handled(writer), until=lambda h: len(h) == 20, timeout=20)
            parked = await writer.fetchval("SELECT count(*) FROM eventstore.parked_events")
            assert parked == 0
        finally:
            await writer.close()


async def test_timers_fire_on_time_after_the_listen_connection_is_killed(
    settings: Settings, database_url: str, nats_url: str
) -> None:
    from datetime import UTC, datetime, timedelta

    system = isolated_system(settings, database_url, nats_url, services=(), timers=True)
    async with system as deps:
        before = restarts("timers")
        await eventually(lambda: terminate(deps.pool, "opsledger timers"), until=lambda n: n > 0)
        await eventually(lambda: asyncio.sleep(0, result=restarts("timers") - before >= 1))
        async with deps.pool.acquire() as conn:
            await schedule(
                deps.store,
                conn,
                due_at=datetime.now(UTC) + timedelta(seconds=0.5),
                target_stream="c-1",
                event=Counted(n=1),
                metadata=META,
            )
        # well before the scheduler's 30 s safety sleep would have noticed
        await eventually(lambda: deps.store.read_stream("c-1"), timeout=5)


async def test_a_system_that_fails_to_start_closes_what_it_opened(
    settings: Settings, database_url: str, nats_url: str, tmp_path: Path
) -> None:
    broken = tmp_path / "migrations"
    broken.mkdir()
    (broken / "0001_broken.sql").write_text("CREATE TABLE nowhere.t (id int);")
    system = isolated_system(
        settings,
        database_url,
        nats_url,
        services=(Service(name="broken", migrations_dir=broken),),
        replica="broken",
    )
    with pytest.raises(asyncpg.PostgresError):
        await system.start()
    assert system.deps is None
    conn = await asyncpg.connect(database_url)
    try:

        async def sessions() -> int:
            return int(
                await conn.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1",
                    "opsledger broken",
                )
            )

        assert await eventually(sessions, until=lambda n: n == 0) == 0
    finally:
        await conn.close()


async def test_a_system_stopped_while_a_task_keeps_failing_stops_promptly(
    settings: Settings, database_url: str, nats_url: str
) -> None:
    system: System = isolated_system(settings, database_url, nats_url, services=())
    deps = await system.start()

    async def doomed(_: TaskStatus) -> None:
        raise RuntimeError("always")

    deps.supervisor.start("doomed", doomed)
    await eventually(lambda: down(deps.supervisor))
    await asyncio.wait_for(system.stop(), timeout=10)


async def test_relay_and_consumers_carry_on_after_the_nats_connection_is_cut(
    settings: Settings, database_url: str, nats_url: str
) -> None:
    host, port = urlsplit(nats_url.split(",")[0]).hostname, urlsplit(nats_url).port
    proxy = CuttableProxy(host or "127.0.0.1", port or 4222)
    via_proxy = f"nats://127.0.0.1:{await proxy.start()}"
    try:
        async with isolated_system(settings, database_url, via_proxy, services=(FAULTY,)) as deps:
            for round_ in range(3):
                assert proxy.cut() > 0
                for i in range(10):
                    await deps.store.append(
                        f"c-{round_}-{i}", [Counted(n=i)], expected_version=ANY, metadata=META
                    )
                await eventually(
                    lambda: handled(deps.pool), until=has_length(10 * (round_ + 1)), timeout=30
                )
            await eventually(lambda: _all_up(deps.supervisor))
    finally:
        await proxy.stop()
