"""Rebuilding a service's projections from the log, under live load, without one long
transaction.

A replay holds its consumer's replay lock (an advisory lock, libs/events/consumers.py) for its
whole run: live transactions of that consumer try the lock shared and step aside (their messages
come back a moment later), so nothing writes the projection meanwhile, and nobody ever waits on
the replay's table locks, so a replay cannot deadlock with live handlers. The rebuild itself is a
series of short transactions (each at most about a tenth of a second): truncate, then the events
in commit order through the same dispatcher the live consumer uses. The server-wide read horizon
is never held for long, so the relay keeps publishing for every service while a replay runs.
Readers of the projection see it grow back from empty until the replay finishes.

An event whose handler fails during the replay is parked (and the replay goes on); parked events
of the consumer from before the replay are resolved by it, since it runs every event again.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from libs.events.consumers import REPLAY_LOCK, Dispatcher, HandlerFailed
from libs.events.db import Conn
from libs.events.envelope import Envelope
from libs.events.parking import park
from libs.events.runtime import Deps, Service
from libs.events.store import START

Progress = Callable[[int, int], None]
"""Called with (done, total) as events are applied."""

BATCH = 500
CHUNK_S = 0.1
"""The longest a replay transaction is meant to last."""


async def replay_service(service: Service, deps: Deps, *, progress: Progress | None = None) -> int:
    """Rebuild every replayable consumer of `service`; returns how many events were applied."""
    applied = 0
    dispatchers = service.dispatchers(deps)
    for consumer in service.consumers:
        if consumer.replayable:
            applied += await replay_consumer(dispatchers[consumer.name], deps, progress=progress)
    return applied


async def replay_consumer(
    dispatcher: Dispatcher, deps: Deps, *, progress: Progress | None = None
) -> int:
    consumer = dispatcher.consumer
    async with deps.pool.acquire() as conn:
        # waits for live transactions of this consumer to finish; new ones step aside
        await conn.execute("SELECT pg_advisory_lock($1, hashtext($2))", REPLAY_LOCK, consumer.name)
        try:
            total = await _reset(conn, consumer.name, consumer.tables, consumer.types)
            done, cursor = 0, START
            while True:
                batch = await deps.store.read_batch(
                    cursor, types=consumer.types, limit=BATCH, conn=conn
                )
                await _apply(conn, dispatcher, batch.events)
                done += len(batch.events)
                cursor = batch.cursor
                if progress is not None:
                    progress(done, max(done, total))
                if len(batch.events) < BATCH:
                    return done
        finally:
            await conn.execute(
                "SELECT pg_advisory_unlock($1, hashtext($2))", REPLAY_LOCK, consumer.name
            )


async def _reset(conn: Conn, consumer: str, tables: Sequence[str], types: list[str]) -> int:
    """Empty the projection and the consumer's checkpoints; returns how many events to apply."""
    async with conn.transaction():
        if tables:
            await conn.execute(f"TRUNCATE {', '.join(tables)}")
        await conn.execute("DELETE FROM eventstore.consumer_streams WHERE consumer = $1", consumer)
        await conn.execute("DELETE FROM eventstore.consumer_attempts WHERE consumer = $1", consumer)
        await conn.execute(
            "UPDATE eventstore.parked_events SET resolved_at = now() "
            "WHERE consumer = $1 AND resolved_at IS NULL",
            consumer,
        )
        return int(
            await conn.fetchval(
                "SELECT count(*) FROM eventstore.events WHERE type = ANY($1::text[])", types
            )
        )


async def _apply(conn: Conn, dispatcher: Dispatcher, events: list[Envelope]) -> None:
    """Apply `events` in transactions that each last at most about CHUNK_S (slow handlers make
    many short transactions, never a long one that would hold the read horizon); a chunk whose
    handler fails is done again one event at a time, parking the events that fail."""
    done = 0
    while done < len(events):
        started, end = time.monotonic(), done
        try:
            async with conn.transaction():
                while end < len(events):
                    await dispatcher.apply(conn, events[end])
                    end += 1
                    if time.monotonic() - started > CHUNK_S:
                        break
        except HandlerFailed:
            await _apply_parking_failures(conn, dispatcher, events[done : end + 1])
            end += 1
        done = end


async def _apply_parking_failures(
    conn: Conn, dispatcher: Dispatcher, events: list[Envelope]
) -> None:
    for envelope in events:
        while True:
            try:
                async with conn.transaction():
                    await dispatcher.apply(conn, envelope)
                break
            except HandlerFailed as exc:
                await park(
                    conn,
                    consumer=dispatcher.consumer.name,
                    envelope=exc.envelope,
                    error=f"during replay: {exc.cause!r}",
                    attempts=1,
                )
