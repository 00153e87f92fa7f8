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

An event whose handler fails during the replay is parked (and the replay goes on); an event
parked before the replay leaves the parked list when the replay runs it successfully. A replay
is recorded in eventstore.replays; one that was interrupted (Ctrl-C, its process killed) is run
again to the end by the consumer's live loop, which checks every few seconds.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING
from uuid import UUID

import asyncpg

from libs.events.consumers import REPLAY_LOCK, Dispatcher, HandlerFailed, describe
from libs.events.db import Conn, connect, is_database_connection_error
from libs.events.envelope import Envelope
from libs.events.parking import park
from libs.events.store import START

if TYPE_CHECKING:
    from libs.events.runtime import Deps, Service

log = logging.getLogger(__name__)

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
    """Rebuild one consumer's projection; waits for a replay of it running elsewhere."""
    done = await _replay(dispatcher, deps, progress=progress, resume_only=False)
    return done or 0


async def resume_interrupted_replay(dispatcher: Dispatcher, deps: Deps) -> int | None:
    """Run again, to the end, a replay of this consumer that was interrupted (its process
    killed, Ctrl-C, a lost connection); None when there is none, or one is running now."""
    unfinished = await deps.pool.fetchval(
        "SELECT started_at FROM eventstore.replays WHERE consumer = $1 AND finished_at IS NULL",
        dispatcher.consumer.name,
    )
    if unfinished is None:
        return None
    return await _replay(dispatcher, deps, progress=None, resume_only=True)


async def _replay(
    dispatcher: Dispatcher, deps: Deps, *, progress: Progress | None, resume_only: bool
) -> int | None:
    consumer = dispatcher.consumer
    # its own session, closed at the end whatever happens: the session lock dies with it
    conn = await _connect(deps)
    try:
        if resume_only:
            if not await conn.fetchval(
                "SELECT pg_try_advisory_lock($1, hashtext($2))", REPLAY_LOCK, consumer.name
            ):
                return None  # a replay is running now
            if not await conn.fetchval(
                "SELECT true FROM eventstore.replays WHERE consumer = $1 AND finished_at IS NULL",
                consumer.name,
            ):
                return None  # finished meanwhile
            log.warning("%s: running again a replay that was interrupted", consumer.name)
        else:
            # waits for live transactions of this consumer to finish; new ones step aside
            await conn.execute(
                "SELECT pg_advisory_lock($1, hashtext($2))", REPLAY_LOCK, consumer.name
            )
        total = await _reset(conn, consumer.name, consumer.tables, consumer.types)
        parked_before = await _parked_ids(conn, consumer.name)
        done, cursor = 0, START
        while True:
            batch = await deps.store.read_batch(
                cursor, types=consumer.types, limit=BATCH, conn=conn
            )
            await _apply(conn, dispatcher, batch.events, parked_before)
            done += len(batch.events)
            cursor = batch.cursor
            if progress is not None:
                progress(done, max(done, total))
            if len(batch.events) < BATCH:
                break
        await conn.execute(
            "UPDATE eventstore.replays SET finished_at = now() WHERE consumer = $1", consumer.name
        )
        return done
    finally:
        await _close(conn)


async def _connect(deps: Deps) -> asyncpg.Connection:
    if deps.settings.database_url is None:
        raise RuntimeError("replay needs settings.database_url")
    return await connect(deps.settings.database_url, application="opsledger replay")


async def _close(conn: asyncpg.Connection) -> None:
    """Close the replay's session (its lock goes with it); after an interruption mid-statement
    a clean close may fail or hang, and the session is then cut instead."""
    try:
        await asyncio.wait_for(asyncio.shield(conn.close()), timeout=5)
    except BaseException:  # the exception that ended the replay is what propagates
        conn.terminate()


async def _reset(conn: Conn, consumer: str, tables: Sequence[str], types: list[str]) -> int:
    """Mark the replay begun, empty the projection and the consumer's checkpoints; returns how
    many events to apply. Parked events stay parked until the replay runs them again."""
    async with conn.transaction():
        await conn.execute(
            "INSERT INTO eventstore.replays (consumer, started_at) VALUES ($1, now()) "
            "ON CONFLICT (consumer) DO UPDATE SET started_at = now(), finished_at = NULL",
            consumer,
        )
        if tables:
            await conn.execute(f"TRUNCATE {', '.join(tables)}")
        await conn.execute("DELETE FROM eventstore.consumer_streams WHERE consumer = $1", consumer)
        await conn.execute("DELETE FROM eventstore.consumer_attempts WHERE consumer = $1", consumer)
        return int(
            await conn.fetchval(
                "SELECT count(*) FROM eventstore.events WHERE type = ANY($1::text[])", types
            )
        )


async def _parked_ids(conn: Conn, consumer: str) -> set[UUID]:
    rows = await conn.fetch(
        "SELECT event_id FROM eventstore.parked_events WHERE consumer = $1 AND resolved_at IS NULL",
        consumer,
    )
    return {r["event_id"] for r in rows}


async def _apply(
    conn: Conn, dispatcher: Dispatcher, events: list[Envelope], parked_before: set[UUID]
) -> None:
    """Apply `events` in transactions that each last at most about CHUNK_S (slow handlers make
    many short transactions, never a long one that would hold the read horizon); a chunk whose
    handler fails is done again one event at a time, parking the events that fail. An event
    parked before the replay that runs now leaves the parked list in the same transaction."""
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
                await _resolve(conn, dispatcher, events[done:end], parked_before)
        except HandlerFailed:
            await _apply_parking_failures(conn, dispatcher, events[done : end + 1], parked_before)
            end += 1
        done = end


async def _apply_parking_failures(
    conn: Conn, dispatcher: Dispatcher, events: list[Envelope], parked_before: set[UUID]
) -> None:
    for envelope in events:
        while True:
            try:
                async with conn.transaction():
                    await dispatcher.apply(conn, envelope)
                    await _resolve(conn, dispatcher, [envelope], parked_before)
                break
            except HandlerFailed as exc:
                if is_database_connection_error(exc.cause):
                    raise  # not the event's fault: the replay stops, and is run again later
                parked_before.discard(exc.envelope.id)  # parked again, by this replay
                await park(
                    conn,
                    consumer=dispatcher.consumer.name,
                    envelope=exc.envelope,
                    error=f"during replay: {describe(exc.cause)}",
                    attempts=1,
                )


async def _resolve(
    conn: Conn, dispatcher: Dispatcher, applied: list[Envelope], parked_before: set[UUID]
) -> None:
    ids = [e.id for e in applied if e.id in parked_before]
    if ids:
        await conn.execute(
            "UPDATE eventstore.parked_events SET resolved_at = now() "
            "WHERE consumer = $1 AND event_id = ANY($2::uuid[]) AND resolved_at IS NULL",
            dispatcher.consumer.name,
            ids,
        )
