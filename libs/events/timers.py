"""Durable timers: schedule an event for a future instant; it is appended once, on time, even
across restarts (SLA warnings, escalation steps, retries, approval expiry).

A timer is a stream (`timer-<id>`: scheduled, then fired or cancelled) plus a row in
eventstore.timers written in the same transaction. Any number of schedulers may run: each claims
due rows with FOR UPDATE SKIP LOCKED, and the timer stream's expected version makes the firing
happen once. A scheduler sleeps until the earliest due time, woken early by NOTIFY on a new timer.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from datetime import UTC, datetime
from uuid import UUID

import asyncpg

from libs.events.catalog.timers import TimerCancelled, TimerFired, TimerScheduled
from libs.events.db import Conn, connect
from libs.events.envelope import Metadata, new_id
from libs.events.registry import REGISTRY, DomainEvent
from libs.events.store import ANY, NO_STREAM, ConcurrencyError, EventStore
from libs.events.wakeups import sleep_until_woken

log = logging.getLogger(__name__)

TIMER_CHANNEL = "eventstore_timers"
MAX_SLEEP_S = 30.0


def timer_stream(timer_id: UUID) -> str:
    return f"timer-{timer_id}"


async def schedule(
    store: EventStore,
    conn: Conn,
    *,
    due_at: datetime,
    target_stream: str,
    event: DomainEvent,
    metadata: Metadata,
    timer_id: UUID | None = None,
) -> UUID:
    """Schedule `event` to be appended to `target_stream` at `due_at`, in the caller's transaction.

    Pass a deterministic `timer_id` to make scheduling idempotent."""
    if due_at.tzinfo is None:
        raise ValueError("due_at must be timezone-aware")
    timer_id = timer_id or new_id()
    scheduled = TimerScheduled(
        timer_id=timer_id,
        due_at=due_at,
        target_stream=target_stream,
        fire_type=event.event_type,
        fire_data=event.model_dump(mode="json"),
    )
    async with conn.transaction():
        await store.append(
            timer_stream(timer_id),
            [scheduled],
            expected_version=NO_STREAM,
            metadata=metadata,
            ids=[uuid.uuid5(timer_id, "scheduled")],
            conn=conn,
        )
        await conn.execute(
            "INSERT INTO eventstore.timers (timer_id, due_at, target_stream, event_type, "
            "event_data, metadata, state) VALUES ($1, $2, $3, $4, $5::text::jsonb, "
            "$6::text::jsonb, 'pending') ON CONFLICT (timer_id) DO NOTHING",
            timer_id,
            due_at,
            target_stream,
            event.event_type,
            json.dumps(scheduled.fire_data),
            metadata.model_dump_json(),
        )
        await conn.execute("SELECT pg_notify($1, '')", TIMER_CHANNEL)
    if not conn.is_in_transaction():
        await store.committed()
    return timer_id


async def cancel(store: EventStore, conn: Conn, *, timer_id: UUID, metadata: Metadata) -> bool:
    """Cancel a pending timer. False when it already fired or was cancelled."""
    async with conn.transaction():
        state = await conn.fetchval(
            "SELECT state FROM eventstore.timers WHERE timer_id = $1 FOR UPDATE", timer_id
        )
        if state != "pending":
            return False
        try:
            await store.append(
                timer_stream(timer_id),
                [TimerCancelled(timer_id=timer_id)],
                expected_version=1,
                metadata=metadata,
                conn=conn,
            )
        except ConcurrencyError:
            return False
        await conn.execute(
            "UPDATE eventstore.timers SET state = 'cancelled' WHERE timer_id = $1", timer_id
        )
    return True


class TimerScheduler:
    """Fires due timers. Safe to run in every replica."""

    def __init__(self, *, store: EventStore, database_url: str, batch: int = 100) -> None:
        self.store = store
        self.database_url = database_url
        self.batch = batch
        self._wake = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self._loop(stop)
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("timer scheduler lost its connection (%s); retrying", exc)
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=1.0)

    async def _loop(self, stop: asyncio.Event) -> None:
        listener = await connect(self.database_url)
        try:
            await listener.add_listener(TIMER_CHANNEL, lambda *_: self._wake.set())
            while not stop.is_set():
                self._wake.clear()
                while await self.fire_due() == self.batch:
                    pass
                next_due = await self.store.pool.fetchval(
                    "SELECT min(due_at) FROM eventstore.timers WHERE state = 'pending'"
                )
                delay = MAX_SLEEP_S
                if next_due is not None:
                    delay = min(
                        MAX_SLEEP_S, max(0.0, (next_due - datetime.now(UTC)).total_seconds())
                    )
                await sleep_until_woken(stop, self._wake, delay)
        finally:
            with contextlib.suppress(Exception):
                await listener.close()

    async def fire_due(self) -> int:
        """Fire every timer due now (up to one batch); returns how many were claimed."""
        async with self.store.transaction() as conn:
            rows = await conn.fetch(
                "SELECT timer_id, target_stream, event_type, event_data, metadata "
                "FROM eventstore.timers WHERE state = 'pending' AND due_at <= now() "
                "ORDER BY due_at LIMIT $1 FOR UPDATE SKIP LOCKED",
                self.batch,
            )
            for row in rows:
                await self._fire(conn, row)
        return len(rows)

    async def _fire(self, conn: Conn, row: asyncpg.Record) -> None:
        timer_id: UUID = row["timer_id"]
        metadata = Metadata.model_validate(row["metadata"])
        event_id = uuid.uuid5(timer_id, "fired-event")
        fire_type: str = row["event_type"]
        payload = REGISTRY.decode(
            fire_type, REGISTRY.class_for(fire_type).schema_version, row["event_data"]
        )
        fired = TimerFired(timer_id=timer_id, fired_at=datetime.now(UTC), event_id=event_id)
        caused = Metadata(
            actor=metadata.actor,
            correlation_id=metadata.correlation_id,
            causation_id=uuid.uuid5(timer_id, "scheduled"),
            causation_depth=metadata.causation_depth + 1,
            service=metadata.service,
        )
        try:
            async with conn.transaction():
                await self.store.append(
                    timer_stream(timer_id),
                    [fired],
                    expected_version=1,
                    metadata=caused,
                    ids=[uuid.uuid5(timer_id, "fired")],
                    conn=conn,
                )
                await self.store.append(
                    row["target_stream"],
                    [payload],
                    expected_version=ANY,
                    metadata=caused,
                    ids=[event_id],
                    conn=conn,
                )
        except ConcurrencyError:
            log.info("timer %s was already fired or cancelled", timer_id)
        await conn.execute(
            "UPDATE eventstore.timers SET state = 'fired' WHERE timer_id = $1", timer_id
        )
