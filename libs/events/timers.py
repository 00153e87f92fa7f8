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
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

import asyncpg

from libs.events.catalog.timers import TimerCancelled, TimerFired, TimerParked, TimerScheduled
from libs.events.db import Conn, connect, is_connection_error
from libs.events.envelope import Actor, Metadata, new_id
from libs.events.registry import REGISTRY, DomainEvent
from libs.events.store import ANY, NO_STREAM, ConcurrencyError, EventStore
from libs.events.supervisor import TaskStatus
from libs.events.wakeups import sleep_until_woken

log = logging.getLogger(__name__)

TIMER_CHANNEL = "eventstore_timers"
MAX_SLEEP_S = 30.0
MIN_SLEEP_S = 0.01
"""A timer that stays due (its target stream is locked by a long transaction) is retried at
most this often, never in a busy loop."""
TARGET_LOCK_TIMEOUT = "1s"
"""How long firing one timer may wait for its target stream; then it is retried later and the
other due timers fire meanwhile."""
HOLD_S = 2.0
STALL_AFTER_S = MAX_SLEEP_S + 30.0


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
        fire_schema_version=event.schema_version,
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
            "event_data, metadata, state, schema_version) VALUES ($1, $2, $3, $4, "
            "$5::text::jsonb, $6::text::jsonb, 'pending', $7) ON CONFLICT (timer_id) DO NOTHING",
            timer_id,
            due_at,
            target_stream,
            event.event_type,
            json.dumps(scheduled.fire_data),
            metadata.model_dump_json(),
            event.schema_version,
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
    """Fires due timers. Safe to run in every replica; runs under the process's supervisor."""

    def __init__(self, *, store: EventStore, database_url: str, batch: int = 100) -> None:
        self.store = store
        self.database_url = database_url
        self.batch = batch
        self._wake = asyncio.Event()
        self._held: dict[UUID, float] = {}
        """Timers whose target stream was locked, and until when (monotonic) to leave them."""

    async def run(self, status: TaskStatus) -> None:
        """Fire due timers until the process stops. A failure, including the LISTEN connection
        closing under us (which would otherwise only make timers late), is raised to the
        supervisor, which restarts this after a backoff."""
        stop = status.stopping
        listener = await connect(self.database_url, application="opsledger timers")
        lost: list[str] = []

        def on_terminated(_: object) -> None:
            lost.append("the LISTEN connection was closed")
            self._wake.set()

        try:
            listener.add_termination_listener(on_terminated)
            await listener.add_listener(TIMER_CHANNEL, lambda *_: self._wake.set())
            status.up()
            while not stop.is_set():
                self._wake.clear()
                while await self.fire_due() == self.batch:
                    status.beat()
                # the wait is computed by the database's clock, which decided what was due:
                # this host's clock may be ahead of it or behind
                until_next = await self.store.pool.fetchval(
                    "SELECT extract(epoch FROM min(due_at) - clock_timestamp())::float8 "
                    "FROM eventstore.timers WHERE state = 'pending' "
                    "AND NOT (timer_id = ANY($1::uuid[]))",
                    self._held_ids(),
                )
                delay = MAX_SLEEP_S
                if until_next is not None:
                    delay = min(MAX_SLEEP_S, max(MIN_SLEEP_S, float(until_next)))
                if self._held:
                    delay = min(
                        delay, max(MIN_SLEEP_S, min(self._held.values()) - time.monotonic())
                    )
                await sleep_until_woken(stop, self._wake, delay)
                status.beat()
                if lost or listener.is_closed():
                    raise ConnectionError(lost[0] if lost else "the LISTEN connection is closed")
        finally:
            with contextlib.suppress(Exception):
                await listener.close()

    def _held_ids(self) -> list[UUID]:
        now = time.monotonic()
        for timer_id in [t for t, until in self._held.items() if until <= now]:
            del self._held[timer_id]
        return list(self._held)

    async def fire_due(self) -> int:
        """Fire every timer due now (up to one batch); returns how many fired or were parked.
        Each timer fires in its own savepoint: one that cannot fire is parked alone, the others
        fire. One whose target stream is locked (a long transaction writing to it) is held back
        for HOLD_S by this scheduler, and so are the others of the batch with that target, so
        they never crowd out the timers that can fire."""
        done = 0
        async with self.store.transaction() as conn:
            await conn.execute(f"SET LOCAL lock_timeout = '{TARGET_LOCK_TIMEOUT}'")
            rows = await conn.fetch(
                "SELECT timer_id, target_stream, event_type, event_data, metadata, "
                "schema_version FROM eventstore.timers WHERE state = 'pending' "
                "AND due_at <= now() AND NOT (timer_id = ANY($2::uuid[])) "
                "ORDER BY due_at LIMIT $1 FOR UPDATE SKIP LOCKED",
                self.batch,
                self._held_ids(),
            )
            locked: set[str] = set()
            for row in rows:
                if row["target_stream"] in locked:
                    self._held[row["timer_id"]] = time.monotonic() + HOLD_S
                    continue
                try:
                    async with conn.transaction():
                        await self._fire(conn, row)
                except asyncpg.LockNotAvailableError:
                    log.warning("timer %s: its target stream is locked; later", row["timer_id"])
                    locked.add(row["target_stream"])
                    self._held[row["timer_id"]] = time.monotonic() + HOLD_S
                    continue
                except Exception as exc:
                    if is_connection_error(exc):
                        raise
                    await self._park(conn, row["timer_id"], f"{type(exc).__name__}: {exc}")
                done += 1
        return done

    async def _fire(self, conn: Conn, row: asyncpg.Record) -> None:
        timer_id: UUID = row["timer_id"]
        metadata = Metadata.model_validate(row["metadata"])
        event_id = uuid.uuid5(timer_id, "fired-event")
        fire_type: str = row["event_type"]
        # rows written before the version was stored hold the version that was current then,
        # which is what this code used to assume
        version = row["schema_version"] or REGISTRY.class_for(fire_type).schema_version
        payload = REGISTRY.decode(fire_type, version, row["event_data"])
        fired = TimerFired(timer_id=timer_id, fired_at=datetime.now(UTC), event_id=event_id)
        caused = _caused_by_timer(timer_id, metadata)
        try:
            await self.store.append(
                timer_stream(timer_id),
                [fired],
                expected_version=1,
                metadata=caused,
                ids=[uuid.uuid5(timer_id, "fired")],
                conn=conn,
            )
        except ConcurrencyError:  # only the timer's own stream: it fired or was cancelled
            log.info("timer %s was already fired or cancelled", timer_id)
        else:
            # a failure here (the target refuses the event) rolls the firing back and parks it
            await self.store.append(
                row["target_stream"],
                [payload],
                expected_version=ANY,
                metadata=caused,
                ids=[event_id],
                conn=conn,
            )
        await conn.execute(
            "UPDATE eventstore.timers SET state = 'fired' WHERE timer_id = $1", timer_id
        )

    async def _park(self, conn: Conn, timer_id: UUID, error: str) -> None:
        log.error("timer %s cannot fire and is parked: %s", timer_id, error)
        metadata = Metadata(actor=Actor.system(), service="timers")
        async with conn.transaction():
            with contextlib.suppress(ConcurrencyError):  # fired or cancelled meanwhile
                await self.store.append(
                    timer_stream(timer_id),
                    [TimerParked(timer_id=timer_id, error=error[:2000])],
                    expected_version=1,
                    metadata=metadata,
                    ids=[uuid.uuid5(timer_id, "parked")],
                    conn=conn,
                )
            await conn.execute(
                "UPDATE eventstore.timers SET state = 'parked', error = $2 WHERE timer_id = $1",
                timer_id,
                error[:2000],
            )


def _caused_by_timer(timer_id: UUID, metadata: Metadata) -> Metadata:
    return Metadata(
        actor=metadata.actor,
        correlation_id=metadata.correlation_id,
        causation_id=uuid.uuid5(timer_id, "scheduled"),
        causation_depth=metadata.causation_depth + 1,
        service=metadata.service,
    )


@dataclass(frozen=True)
class ParkedTimer:
    timer_id: UUID
    due_at: datetime
    target_stream: str
    event_type: str
    error: str


async def list_parked_timers(pool: asyncpg.Pool) -> list[ParkedTimer]:
    rows = await pool.fetch(
        "SELECT timer_id, due_at, target_stream, event_type, coalesce(error, '') AS error "
        "FROM eventstore.timers WHERE state = 'parked' ORDER BY due_at"
    )
    return [ParkedTimer(**dict(r)) for r in rows]
