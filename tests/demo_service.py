"""A tiny service for the runtime's tests: a projection of test.counted and a poison handler."""

from __future__ import annotations

from pathlib import Path

import asyncpg

from libs.events.consumers import Consumer, HandlerContext
from libs.events.runtime import Service
from tests.events_for_tests import Counted, Poison


async def on_counted(ctx: HandlerContext, event: Counted) -> None:
    await ctx.conn.execute(
        "INSERT INTO demo.totals (stream_id, total, seen) VALUES ($1, $2, 1) "
        "ON CONFLICT (stream_id) DO UPDATE SET total = demo.totals.total + $2, "
        "seen = demo.totals.seen + 1",
        ctx.envelope.stream_id,
        event.n,
    )
    replica = ctx.settings.data_dir.name
    await ctx.conn.execute(
        "INSERT INTO demo.handled_by (event_id, replica) VALUES ($1, $2)", ctx.envelope.id, replica
    )


async def on_poison(ctx: HandlerContext, event: Poison) -> None:
    # counted outside the handler's transaction, so failed attempts are visible to the test
    attempts = await count_attempt(ctx.settings.database_url or "", ctx.envelope.id)
    if attempts <= event.fail_times:
        raise RuntimeError(f"poisoned (attempt {attempts})")
    await on_counted(ctx, Counted(n=100))


async def count_attempt(database_url: str, event_id: object) -> int:
    conn = await asyncpg.connect(database_url)
    try:
        return int(
            await conn.fetchval(
                "INSERT INTO demo.poison_attempts VALUES ($1, 1) ON CONFLICT (event_id) DO UPDATE "
                "SET attempts = demo.poison_attempts.attempts + 1 RETURNING attempts",
                event_id,
            )
        )
    finally:
        await conn.close()


DEMO = Service(
    name="demo",
    consumers=[
        Consumer(
            name="demo-totals",
            handlers={"test.counted": on_counted, "test.poison": on_poison},
            tables=("demo.totals", "demo.handled_by"),
        )
    ],
    migrations_dir=Path(__file__).parent / "demo_migrations",
)
