"""Consumers: how one event reaches a service's handlers exactly once and in stream order.

The bus delivers at least once and, with replicas, not always in order. Each consumer keeps the
last version it processed per stream (eventstore.consumer_streams), locked FOR UPDATE in the same
transaction as the handler's writes: a repeat is skipped, and a version arriving after a gap first
fetches the missing events from the store. The store, not the bus, is what a handler trusts.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg

from libs.events.db import Conn
from libs.events.envelope import Actor, Envelope, Metadata
from libs.events.registry import REGISTRY, DomainEvent, EventRegistry
from libs.events.settings import Settings
from libs.events.store import EventStore


@dataclass
class HandlerContext:
    """What a handler gets besides its event: the transaction's connection and a way to append."""

    conn: Conn
    store: EventStore
    envelope: Envelope
    consumer: str
    service: str
    settings: Settings

    @property
    def metadata(self) -> Metadata:
        return Metadata(
            actor=Actor.service(self.service),
            correlation_id=self.envelope.metadata.correlation_id,
            causation_id=self.envelope.id,
            causation_depth=self.envelope.metadata.causation_depth + 1,
            service=self.service,
        )

    async def append(
        self, stream_id: str, events: Sequence[DomainEvent], *, expected_version: int
    ) -> list[Envelope]:
        """Append in this transaction. Ids derive from (consumer, causing event), so a handler run
        twice for the same event can never write its events twice."""
        ids = [
            uuid.uuid5(self.envelope.id, f"{self.consumer}/{stream_id}/{i}")
            for i in range(len(events))
        ]
        return await self.store.append(
            stream_id,
            events,
            expected_version=expected_version,
            metadata=self.metadata,
            ids=ids,
            conn=self.conn,
        )


Handler = Callable[[HandlerContext, Any], Awaitable[None]]


@dataclass(frozen=True)
class Consumer:
    """A durable subscription of one service: event type -> handler.

    A `replayable` consumer is a projection: `opsledger replay` truncates its `tables` and runs it
    again over the whole log. A non-replayable one reacts (appends events, starts side effects).
    """

    name: str
    handlers: Mapping[str, Handler]
    replayable: bool = True
    tables: tuple[str, ...] = ()

    @property
    def types(self) -> list[str]:
        return sorted(self.handlers)

    def subject_prefix(self) -> str:
        """The one category every handled type shares ('' when they span several)."""
        categories = {t.split(".", 1)[0] for t in self.handlers}
        return categories.pop() if len(categories) == 1 else ""


class HandlerFailed(Exception):
    """A handler raised; `envelope` is the event it failed on (maybe a gap event, not the one
    delivered)."""

    def __init__(self, envelope: Envelope, cause: BaseException) -> None:
        super().__init__(f"{envelope.type} {envelope.id} v{envelope.version}: {cause!r}")
        self.envelope = envelope
        self.cause = cause


@dataclass
class Dispatcher:
    """Runs a consumer's handlers for an envelope inside a caller's transaction."""

    consumer: Consumer
    service: str
    store: EventStore
    settings: Settings
    registry: EventRegistry = REGISTRY

    async def apply(self, conn: Conn, envelope: Envelope) -> bool:
        """Process `envelope` (and any gap before it) once. False when it was already processed."""
        last = await lock_stream_checkpoint(conn, self.consumer.name, envelope.stream_id)
        if envelope.version <= last:
            return False
        todo: list[Envelope] = []
        if envelope.version > last + 1:
            todo = await self.store.read_stream(
                envelope.stream_id,
                from_version=last + 1,
                to_version=envelope.version - 1,
                types=self.consumer.types,
                conn=conn,
            )
        todo.append(envelope)
        for item in todo:
            await self.run_handler(conn, item)
        await set_stream_checkpoint(conn, self.consumer.name, envelope.stream_id, envelope.version)
        return True

    async def run_handler(self, conn: Conn, envelope: Envelope) -> None:
        handler = self.consumer.handlers.get(envelope.type)
        if handler is None:
            return
        ctx = HandlerContext(
            conn=conn,
            store=self.store,
            envelope=envelope,
            consumer=self.consumer.name,
            service=self.service,
            settings=self.settings,
        )
        try:
            await handler(ctx, self.registry.load(envelope))
        except Exception as exc:  # the caller's transaction is lost; name the event it failed on
            raise HandlerFailed(envelope, exc) from exc


async def append_and_project(
    store: EventStore,
    conn: Conn,
    projections: Sequence[Dispatcher],
    stream_id: str,
    events: Sequence[DomainEvent],
    *,
    expected_version: int,
    metadata: Metadata,
    ids: Sequence[UUID] | None = None,
) -> list[Envelope]:
    """Append and apply `projections` in the caller's transaction (read-your-writes).

    The same projections also run as live consumers: their per-stream checkpoint makes the bus
    delivery of these events a no-op, and still applies events appended by anyone else."""
    written = await store.append(
        stream_id, events, expected_version=expected_version, metadata=metadata, ids=ids, conn=conn
    )
    for dispatcher in projections:
        for envelope in written:
            await dispatcher.apply(conn, envelope)
    return written


async def lock_stream_checkpoint(conn: Conn, consumer: str, stream_id: str) -> int:
    """Create or lock the consumer's row for the stream (one statement) and return its version.

    The no-op update takes the row lock, so a racing replica waits here until we commit."""
    return int(
        await conn.fetchval(
            "INSERT INTO eventstore.consumer_streams AS c (consumer, stream_id, version) "
            "VALUES ($1, $2, 0) ON CONFLICT (consumer, stream_id) DO UPDATE "
            "SET version = c.version RETURNING c.version",
            consumer,
            stream_id,
        )
    )


async def set_stream_checkpoint(conn: Conn, consumer: str, stream_id: str, version: int) -> None:
    await conn.execute(
        "UPDATE eventstore.consumer_streams SET version = greatest(version, $3) "
        "WHERE consumer = $1 AND stream_id = $2",
        consumer,
        stream_id,
        version,
    )


async def park(conn: Conn, *, consumer: str, envelope: Envelope, error: str, attempts: int) -> None:
    """Record an event a consumer gave up on and move its checkpoint past it, in one transaction."""
    async with conn.transaction():
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
            error[:4000],
            attempts,
        )
        await lock_stream_checkpoint(conn, consumer, envelope.stream_id)
        await set_stream_checkpoint(conn, consumer, envelope.stream_id, envelope.version)


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
    succeeded; a failure raises and the event stays parked."""
    done = 0
    for parked in await list_parked(pool, event_id=event_id):
        if parked.consumer not in dispatchers:
            continue
        dispatcher = dispatchers[parked.consumer]
        [envelope] = await dispatcher.store.read_stream(
            parked.stream_id, from_version=parked.version, to_version=parked.version
        )
        async with dispatcher.store.transaction() as conn:
            await dispatcher.run_handler(conn, envelope)
            await conn.execute(
                "UPDATE eventstore.parked_events SET resolved_at = now() "
                "WHERE consumer = $1 AND event_id = $2",
                parked.consumer,
                event_id,
            )
        done += 1
    return done
