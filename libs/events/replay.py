"""Rebuilding a service's projections from the log: truncate, then run every event through the
same dispatcher the live consumer uses, in one transaction (readers see the old tables until the
new ones are complete; live handlers wait on the truncated tables' locks, then skip what the
rebuild already covered)."""

from __future__ import annotations

from collections.abc import Callable

from libs.events.runtime import Deps, Service
from libs.events.store import START

Progress = Callable[[int, int], None]
"""Called with (done, total) as events are applied."""


async def replay_service(service: Service, deps: Deps, *, progress: Progress | None = None) -> int:
    """Rebuild every replayable consumer of `service`; returns how many events were applied."""
    applied = 0
    dispatchers = service.dispatchers(deps)
    for consumer in service.consumers:
        if not consumer.replayable:
            continue
        dispatcher = dispatchers[consumer.name]
        types = consumer.types
        async with deps.pool.acquire() as conn, conn.transaction():
            if consumer.tables:
                await conn.execute(f"TRUNCATE {', '.join(consumer.tables)}")
            await conn.execute(
                "DELETE FROM eventstore.consumer_streams WHERE consumer = $1", consumer.name
            )
            total = int(
                await conn.fetchval(
                    "SELECT count(*) FROM eventstore.events WHERE type = ANY($1::text[])", types
                )
            )
            done = 0
            cursor = START
            while True:
                batch = await deps.store.read_batch(cursor, types=types, limit=1000, conn=conn)
                for envelope in batch.events:
                    await dispatcher.apply(conn, envelope)
                    done += 1
                if progress is not None:
                    progress(done, total)
                cursor = batch.cursor
                if len(batch.events) < 1000:
                    break
            applied += done
    return applied
