"""Failed attempts and parked events: what a consumer gave up on, where an operator sees it.

Attempts are counted here, per (consumer, event), in their own short transaction (the handler's
transaction has rolled back by then), never taken from the bus's delivery count, which also
counts redeliveries after an ack timeout. Parking records the event and marks its version parked
in the consumer's checkpoint in one transaction; the checkpoint passes it only when everything
before it in its stream was handled or parked too (libs/events/checkpoints.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING
from uuid import UUID

import asyncpg

from libs.events.checkpoints import lock_checkpoints, save_checkpoints
from libs.events.db import Conn
from libs.events.envelope import Envelope

if TYPE_CHECKING:
    from libs.events.consumers import Dispatcher

ERROR_LIMIT = 4000


async def record_attempt(conn: Conn, *, consumer: str, envelope: Envelope, error: str) -> int:
    """Count one failed attempt of `consumer` on `envelope`; returns the attempts so far."""
    return int(
        await conn.fetchval(
            "INSERT INTO eventstore.consumer_attempts AS a (consumer, event_id, attempts, "
            "last_error) VALUES ($1, $2, 1, $3) ON CONFLICT (consumer, event_id) DO UPDATE "
            "SET attempts = a.attempts + 1, last_error = excluded.last_error, last_at = now() "
            "RETURNING a.attempts",
            consumer,
            envelope.id,
            error[:ERROR_LIMIT],
        )
    )


async def record_start(conn: Conn, *, consumer: str, envelope: Envelope) -> int:
    """Note that a run of `consumer`'s handler on a redelivered `envelope` begins; returns how
    many earlier such runs never finished (their process died under them)."""
    return int(
        await conn.fetchval(
            "INSERT INTO eventstore.consumer_attempts AS a (consumer, event_id, starts) "
            "VALUES ($1, $2, 1) ON CONFLICT (consumer, event_id) DO UPDATE "
            "SET starts = a.starts + 1, last_at = now() RETURNING a.starts - 1 - a.finishes",
            consumer,
            envelope.id,
        )
    )


async def record_finish(conn: Conn, *, consumer: str, envelope: Envelope) -> None:
    await conn.execute(
        "UPDATE eventstore.consumer_attempts SET finishes = finishes + 1 "
        "WHERE consumer = $1 AND event_id = $2",
        consumer,
        envelope.id,
    )


async def park(conn: Conn, *, consumer: str, envelope: Envelope, error: str, attempts: int) -> bool:
    """Record an event `consumer` gave up on and mark it parked in its checkpoint, atomically.

    False (and nothing written) when the checkpoint, locked here, has already passed the event:
    another replica handled it meanwhile (a gap repair, a second copy of its message), so parking
    it would let an operator's retry run its handler a second time."""
    async with conn.transaction():
        checkpoints = await lock_checkpoints(conn, consumer, [envelope.stream_id])
        checkpoint = checkpoints[envelope.stream_id]
        if checkpoint.is_done(envelope.version) or checkpoint.is_parked(envelope.version):
            return False
        await conn.execute(
            "INSERT INTO eventstore.parked_events "
            "(consumer, event_id, stream_id, version, type, error, attempts) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (consumer, event_id) DO UPDATE "
            "SET error = excluded.error, attempts = excluded.attempts, "
            "parked_at = now(), resolved_at = NULL",
            consumer,
            envelope.id,
            envelope.stream_id,
            envelope.version,
            envelope.type,
            error[:ERROR_LIMIT],
            attempts,
        )
        checkpoint.mark_parked(envelope.version)
        await save_checkpoints(conn, consumer, checkpoints)
        return True


@dataclass(frozen=True)
class ParkedEvent:
    consumer: str
    event_id: UUID
    stream_id: str
    version: int
    type: str
    error: str
    attempts: int


async def list_parked(
    pool: asyncpg.Pool, *, consumer: str | None = None, event_id: UUID | None = None
) -> list[ParkedEvent]:
    rows = await pool.fetch(
        "SELECT consumer, event_id, stream_id, version, type, error, attempts "
        "FROM eventstore.parked_events WHERE resolved_at IS NULL "
        "AND ($1::text IS NULL OR consumer = $1) AND ($2::uuid IS NULL OR event_id = $2) "
        "ORDER BY parked_at",
        consumer,
        event_id,
    )
    return [ParkedEvent(**dict(r)) for r in rows]


async def retry_parked(
    pool: asyncpg.Pool, dispatchers: Mapping[str, Dispatcher], event_id: UUID
) -> int:
    """Run parked handlers for `event_id` again; resolved ones leave the list. Returns how many
    succeeded; a failure raises and the event stays parked.

    Each retry claims its parked row (FOR UPDATE) and runs only if the row is still unresolved
    once the claim is granted, so two concurrent retries, or a retry after a replay that already
    applied the event, never run the handler twice. While a replay of the consumer runs, the
    retry raises ReplayInProgress (the replay runs the event again anyway)."""
    done = 0
    for parked in await list_parked(pool, event_id=event_id):
        dispatcher = dispatchers.get(parked.consumer)
        if dispatcher is None:
            continue
        async with dispatcher.store.transaction() as conn:
            await dispatcher.enter(conn)  # a replay of this consumer runs: it will run it
            still_parked = await conn.fetchval(
                "SELECT resolved_at IS NULL FROM eventstore.parked_events "
                "WHERE consumer = $1 AND event_id = $2 FOR UPDATE",
                parked.consumer,
                event_id,
            )
            if not still_parked:
                continue
            [envelope] = await dispatcher.store.read_stream(
                parked.stream_id, from_version=parked.version, to_version=parked.version, conn=conn
            )
            await dispatcher.run_handler(conn, envelope)
            await conn.execute(
                "UPDATE eventstore.parked_events SET resolved_at = now() "
                "WHERE consumer = $1 AND event_id = $2",
                parked.consumer,
                event_id,
            )
        done += 1
    return done
