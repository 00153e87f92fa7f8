"""Consumers: how one event reaches a service's handlers exactly once and in stream order.

The bus delivers at least once and, with replicas, not always in order. Each consumer keeps the
last version it passed per stream (libs/events/checkpoints.py), locked FOR UPDATE in the same
transaction as the handler's writes: a repeat is skipped, and a version arriving after a gap first
fetches the missing events from the store. The store, not the bus, is what a handler trusts.
Every handler runs under its own time limit, and a failure names the event it failed on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

import asyncpg

from libs.events.checkpoints import (
    Checkpoint,
    lock_checkpoints_gated,
    lock_checkpoints_known,
    save_checkpoints,
)
from libs.events.db import Conn
from libs.events.envelope import Envelope, Metadata
from libs.events.handler_api import (
    Consumer,
    Handler,
    HandlerContext,
    HandlerFailed,
    ReplayInProgress,
    derived_id,
    describe,
)
from libs.events.parking import ParkedEvent, list_parked, park, retry_parked
from libs.events.registry import REGISTRY, DomainEvent, EventRegistry
from libs.events.settings import Settings
from libs.events.store import EventStore

__all__ = [  # parking lives in its own module; these names stay importable from here
    "Consumer",
    "Dispatcher",
    "Handler",
    "HandlerContext",
    "HandlerFailed",
    "ParkedEvent",
    "ReplayInProgress",
    "append_and_project",
    "derived_id",
    "describe",
    "list_parked",
    "park",
    "retry_parked",
]

log = logging.getLogger(__name__)

REPLAY_LOCK = 7_311_003
"""Advisory lock class: a replay holds (REPLAY_LOCK, hashtext(consumer)) exclusively; live
transactions of that consumer try it shared, and step aside while a replay runs."""


@dataclass
class Dispatcher:
    """Runs a consumer's handlers for envelopes inside a caller's transaction."""

    consumer: Consumer
    service: str
    store: EventStore
    settings: Settings
    registry: EventRegistry = REGISTRY

    async def apply(self, conn: Conn, envelope: Envelope) -> bool:
        """Process `envelope` (and any gap before it) once. False when it was already passed."""
        [processed] = await self.apply_batch(conn, [envelope])
        return processed

    async def apply_batch(
        self,
        conn: Conn,
        envelopes: Sequence[Envelope],
        *,
        budget_s: float | None = None,
        verify: bool = True,
    ) -> list[bool]:
        """Process `envelopes` in order in the caller's transaction; one outcome each.

        With `budget_s`, stops after the event that used the budget up and returns the outcomes
        of that prefix (the caller commits, and goes on in a new transaction: a batch of slow
        handlers must not become one long transaction holding the read horizon). With `verify`,
        an envelope whose id is not in the store (a message from another deployment, or from
        before a database restore) is skipped, never handled with the bus's copy of its data.

        Raises ReplayInProgress (before writing anything) while a replay of this consumer runs,
        and HandlerFailed naming the event whose handler failed (the transaction is then lost)."""
        if not envelopes:
            return []
        started = time.monotonic()
        keys = [(e.id, e.stream_id, e.version) for e in envelopes]
        if verify:
            checkpoints, known = await lock_checkpoints_known(
                conn, self.consumer.name, keys, gate=REPLAY_LOCK
            )
        else:
            checkpoints = await lock_checkpoints_gated(
                conn, self.consumer.name, (e.stream_id for e in envelopes), gate=REPLAY_LOCK
            )
            known = set(keys)
        if checkpoints is None:
            raise ReplayInProgress(self.consumer.name)
        chosen: list[Envelope | None] = []
        for envelope, key in zip(envelopes, keys, strict=True):
            if key in known:
                chosen.append(envelope)
            else:
                self._foreign(envelope)
                chosen.append(None)
        run = _Run()
        outcomes: list[bool] = []
        for ours in chosen:
            if ours is None:
                outcomes.append(False)
            else:
                outcomes.append(await self._apply(conn, ours, checkpoints[ours.stream_id], run))
            if budget_s is not None and time.monotonic() - started > budget_s:
                break
        try:
            await save_checkpoints(conn, self.consumer.name, checkpoints)
        except asyncpg.InFailedSQLTransactionError as exc:
            raise self._aborted_by(run, envelopes[len(outcomes) - 1], exc) from exc
        return outcomes

    def _foreign(self, delivered: Envelope) -> None:
        """A message the store does not hold as named: skipped, never handled (the store, not
        the bus, is what a handler trusts)."""
        log.warning(
            "%s: skipping a message for %s %s@%d: the store holds no such event (another "
            "deployment's message, one from before a restore, or a forged one)",
            self.consumer.name,
            delivered.id,
            delivered.stream_id,
            delivered.version,
        )

    async def enter(self, conn: Conn) -> None:
        """Take this consumer's replay lock shared for the transaction, or step aside."""
        entered = await conn.fetchval(
            "SELECT pg_try_advisory_xact_lock_shared($1, hashtext($2))",
            REPLAY_LOCK,
            self.consumer.name,
        )
        if not entered:
            raise ReplayInProgress(self.consumer.name)

    async def _apply(
        self, conn: Conn, envelope: Envelope, checkpoint: Checkpoint, run: _Run
    ) -> bool:
        if checkpoint.is_done(envelope.version):
            return False
        if envelope.version > checkpoint.version + 1:
            gap = await self.store.read_stream(
                envelope.stream_id,
                from_version=checkpoint.version + 1,
                to_version=envelope.version - 1,
                types=self.consumer.types,
                conn=conn,
            )
            for item in gap:
                if not checkpoint.is_parked(item.version):
                    await self.run_handler(conn, item, run=run)
        processed = not checkpoint.is_parked(envelope.version)
        if processed:
            await self.run_handler(conn, envelope, run=run)
        checkpoint.advance(envelope.version)
        return processed

    async def run_handler(self, conn: Conn, envelope: Envelope, *, run: _Run | None = None) -> None:
        """Run the handler for one event under its own time limit; any failure (a timeout, or a
        cancellation that is not this task being stopped, included) is raised as HandlerFailed
        naming this event. A failure that only says an earlier handler of this transaction left
        it aborted (it swallowed an SQL error) is pinned on that earlier event."""
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
            async with asyncio.timeout(self.settings.handler_timeout_s):
                await handler(ctx, self.registry.load(envelope))
        except asyncpg.InFailedSQLTransactionError as exc:
            raise self._aborted_by(run, envelope, exc) from exc
        except asyncio.CancelledError as exc:
            task = asyncio.current_task()
            if task is None or task.cancelling():
                raise  # this task is being stopped: not the event's failure
            raise HandlerFailed(envelope, exc) from exc
        except Exception as exc:  # the caller's transaction is lost; name the event it failed on
            raise HandlerFailed(envelope, exc) from exc
        if run is not None:
            run.last = envelope

    @staticmethod
    def _aborted_by(run: _Run | None, current: Envelope, exc: BaseException) -> HandlerFailed:
        culprit = run.last if run is not None and run.last is not None else current
        return HandlerFailed(culprit, exc, note="its handler left the transaction aborted")


@dataclass
class _Run:
    """One transaction's run of handlers: the last event whose handler returned."""

    last: Envelope | None = None


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
    savepoint: bool = True,
) -> list[Envelope]:
    """Append and apply `projections` in the caller's transaction (read-your-writes);
    `savepoint` as in `EventStore.append`.

    A projection being replayed is skipped: the replay or the live consumer after it applies the
    events, so only read-your-writes is lost for the replay's duration.

    The same projections also run as live consumers: their per-stream checkpoint makes the bus
    delivery of these events a no-op, and still applies events appended by anyone else."""
    written = await store.append(
        stream_id,
        events,
        expected_version=expected_version,
        metadata=metadata,
        ids=ids,
        conn=conn,
        savepoint=savepoint,
    )
    for dispatcher in projections:
        # while a replay runs, it (or the live consumer right after it) applies these events
        with contextlib.suppress(ReplayInProgress):
            await dispatcher.apply_batch(conn, written, verify=False)  # just written here
    return written
