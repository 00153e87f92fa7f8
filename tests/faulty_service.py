"""A service whose handlers fail, stall or append on command, for the failure-path tests."""

from __future__ import annotations

import asyncio
from pathlib import Path
from uuid import UUID

import asyncpg

from libs.events.consumers import Consumer, HandlerContext
from libs.events.runtime import Service
from tests.events_for_tests import AppendsTwice, Counted, Flaky


async def count_attempt(database_url: str, event_id: UUID) -> int:
    """Count a handler run in its own connection, so runs that roll back are counted too."""
    conn = await asyncpg.connect(database_url)
    try:
        return int(
            await conn.fetchval(
                "INSERT INTO faulty.attempts VALUES ($1, 1) ON CONFLICT (event_id) DO UPDATE "
                "SET attempts = faulty.attempts.attempts + 1 RETURNING attempts",
                event_id,
            )
        )
    finally:
        await conn.close()


async def record(ctx: HandlerContext) -> None:
    await ctx.conn.execute(
        "INSERT INTO faulty.handled (event_id, stream_id, version, consumer) "
        "VALUES ($1, $2, $3, $4)",
        ctx.envelope.id,
        ctx.envelope.stream_id,
        ctx.envelope.version,
        ctx.consumer,
    )


async def on_flaky(ctx: HandlerContext, event: Flaky) -> None:
    attempt = await count_attempt(ctx.settings.database_url or "", ctx.envelope.id)
    if attempt <= event.slow_times:
        await asyncio.sleep(event.slow_s)
    if attempt <= event.fail_times:
        raise RuntimeError(f"flaky (attempt {attempt})")
    await record(ctx)


async def on_counted(ctx: HandlerContext, _: Counted) -> None:
    await record(ctx)


async def on_appends_twice(ctx: HandlerContext, event: AppendsTwice) -> None:
    await ctx.append(event.stream_id, [Counted(n=1)], expected_version=-1)
    await ctx.append(event.stream_id, [Counted(n=2)], expected_version=-1)


FAULTY = Service(
    name="faulty",
    consumers=[
        Consumer(
            name="faulty",
            handlers={
                "test.flaky": on_flaky,
                "test.counted": on_counted,
                "test.appends_twice": on_appends_twice,
            },
            tables=("faulty.handled",),
        )
    ],
    migrations_dir=Path(__file__).parent / "faulty_migrations",
)


async def handled(pool: asyncpg.Pool) -> list[tuple[str, int]]:
    """(stream, version) of every handled event, in handling order."""
    rows = await pool.fetch("SELECT stream_id, version FROM faulty.handled ORDER BY seq")
    return [(r["stream_id"], r["version"]) for r in rows]


async def attempts(pool: asyncpg.Pool, event_id: UUID) -> int:
    value = await pool.fetchval(
        "SELECT attempts FROM faulty.attempts WHERE event_id = $1", event_id
    )
    return int(value or 0)
