"""Durable timers on their failure paths: an old payload is upcast when it fires, a timer that
cannot fire is parked alone and the others still fire."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from asyncio.subprocess import PIPE
from datetime import UTC, datetime, timedelta

from libs.events.envelope import Actor, Metadata
from libs.events.settings import Settings
from libs.events.testing import eventually, isolated_system
from libs.events.timers import list_parked_timers, schedule, timer_stream
from tests.events_for_tests import Counted

META = Metadata(actor=Actor.system(), service="test")


async def test_an_old_payload_is_upcast_and_a_bad_one_is_parked_while_the_rest_fire(
    settings: Settings, database_url: str, nats_url: str
) -> None:
    system = isolated_system(settings, database_url, nats_url, services=(), timers=False)
    async with system as deps, deps.pool.acquire() as conn:
        due = datetime.now(UTC) + timedelta(seconds=0.2)
        ids = [
            await schedule(
                deps.store,
                conn,
                due_at=due + timedelta(milliseconds=i),
                target_stream=f"t-{name}",
                event=Counted(n=i),
                metadata=META,
            )
            for i, name in enumerate(("old", "bad", "good"))
        ]
        old, bad, _ = ids
        # rows as an older release left them: a v1 payload of a type now at v2, and a payload
        # that no longer validates
        await conn.execute(
            "UPDATE eventstore.timers SET event_type = 'test.renamed', schema_version = 1, "
            "event_data = $2::text::jsonb WHERE timer_id = $1",
            old,
            json.dumps({"name": "Ada Lovelace"}),
        )
        await conn.execute(
            'UPDATE eventstore.timers SET event_data = \'{"n": "many"}\' WHERE timer_id = $1',
            bad,
        )
    async with isolated_system(
        settings, database_url, nats_url, services=(), timers=True, replica="t"
    ) as deps:
        [fired] = await eventually(lambda: deps.store.read_stream("t-good"), timeout=5)
        assert fired.data == {"n": 2}
        [upcast] = await eventually(lambda: deps.store.read_stream("t-old"), timeout=5)
        assert (upcast.type, upcast.schema_version) == ("test.renamed", 2)
        assert upcast.data == {"first": "Ada", "last": "Lovelace"}
        assert await deps.store.read_stream("t-bad") == []
        [parked] = await eventually(lambda: list_parked_timers(deps.pool))
        assert parked.timer_id == bad
        assert "does not validate" in parked.error
        history = await deps.store.read_stream(timer_stream(bad))
        assert [e.type for e in history] == ["timer.scheduled", "timer.parked"]
        assert deps.supervisor.down() == []
    listed = await opsledger(settings, database_url, nats_url, "parked", "list")
    assert f"timer {bad}" in listed
    assert "could not fire" in listed


async def opsledger(settings: Settings, database_url: str, nats_url: str, *args: str) -> str:
    """Run the real `opsledger` command against this test's deployment; its standard output."""
    env = {
        **os.environ,
        "OPSLEDGER_DATABASE_URL": database_url,
        "OPSLEDGER_NATS_URL": nats_url,
        "OPSLEDGER_NAMESPACE": settings.namespace,
        "OPSLEDGER_DATA_DIR": str(settings.data_dir / "cli"),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "libs.events.cli", *args, env=env, stdout=PIPE, stderr=PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, err.decode()
    return out.decode()


async def test_a_timer_scheduled_records_the_schema_version_of_its_payload(
    settings: Settings, database_url: str, nats_url: str
) -> None:
    system = isolated_system(settings, database_url, nats_url, services=())
    async with system as deps, deps.pool.acquire() as conn:
        timer_id = await schedule(
            deps.store,
            conn,
            due_at=datetime.now(UTC) + timedelta(hours=1),
            target_stream="t-1",
            event=Counted(n=1),
            metadata=META,
        )
        [scheduled] = await deps.store.read_stream(timer_stream(timer_id))
        assert scheduled.schema_version == 2
        assert scheduled.data["fire_schema_version"] == 1
        stored = await conn.fetchval(
            "SELECT schema_version FROM eventstore.timers WHERE timer_id = $1", timer_id
        )
        assert stored == 1
