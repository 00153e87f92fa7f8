"""The event store: optimistic-concurrency appends and gap-safe reads over eventstore.events.

Global order is commit order. Every row records its writing transaction (`tx_id`); readers of
the global log take only rows whose transaction is older than the oldest one still running
(`pg_snapshot_xmin`), ordered by (tx_id, position). A transaction that took a position early and
commits late is therefore read after the events already handed out, never skipped, and writers
are never serialised. `position` is an event's global id; `after=<position>` resumes after it.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextvars import ContextVar
from uuid import UUID

import asyncpg

from libs.events.batch_encoding import EncodedBatch, encode_batch
from libs.events.db import Conn
from libs.events.envelope import Envelope, Metadata
from libs.events.log_reads import (
    COLUMNS,
    START,
    Batch,
    CommitCursor,
    LogReader,
    dump_envelope,
    envelope_of,
    load_envelope,
)
from libs.events.registry import REGISTRY, DomainEvent, EventRegistry
from libs.events.store_errors import (
    MAX_EVENT_BYTES,
    BatchTooLarge,
    ConcurrencyError,
    EventTooLarge,
    StoreError,
    UnknownPosition,
    UnreadableEvent,
)

__all__ = [
    "ANY",
    "MAX_EVENT_BYTES",
    "NO_STREAM",
    "START",
    "Batch",
    "BatchTooLarge",
    "CommitCursor",
    "ConcurrencyError",
    "EventStore",
    "EventTooLarge",
    "StoreError",
    "UnknownPosition",
    "UnreadableEvent",
    "dump_envelope",
    "load_envelope",
]

NO_STREAM = 0
"""expected_version for "this stream must not exist yet"."""
ANY = -1
"""expected_version for "append whatever the stream's version is"."""


_APPENDED_IN_TRANSACTION: ContextVar[list[bool] | None] = ContextVar("appended", default=None)
"""Set by `transaction()`: whether an append happened inside it, so it wakes the relay only then."""
ANY_ATTEMPTS = 100

_APPEND = """
WITH cur AS (
    SELECT coalesce(max(version), 0) AS v, $6::text::jsonb AS meta
    FROM eventstore.events WHERE stream_id = $1
), written AS (
    INSERT INTO eventstore.events (id, stream_id, version, type, schema_version, data, metadata)
    SELECT e.id, $1, cur.v + e.n, e.type, e.schema_version, e.data, cur.meta
    FROM cur, ROWS FROM (unnest($2::uuid[]), unnest($3::text[]), unnest($4::smallint[]),
                         jsonb_array_elements($5::text::jsonb))
         WITH ORDINALITY AS e(id, type, schema_version, data, n)
    WHERE $7::int < 0 OR cur.v = $7::int
    RETURNING position, version
)
SELECT (SELECT v FROM cur) AS before, now() AS recorded_at,
       (SELECT array_agg(position ORDER BY version) FROM written) AS positions
"""
"""One statement per batch. The payloads come as one JSON array (libs/events/batch_encoding.py)
and the metadata is parsed once, not per row; the answer is one row
(the stream's version before, the positions in version order, and `recorded_at`, which is the
transaction's `now()` like the column's default), not a row per event; and a version mismatch
answers with the stream's actual version, with no second query."""


class EventStore(LogReader):
    """Append to and read from the log. Pass `conn` to join a caller's transaction."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        registry: EventRegistry = REGISTRY,
        wake: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        super().__init__(pool)
        self.registry = registry
        self.wake = wake
        """Called after a commit that appended events: tells the relay there is work."""

    async def committed(self) -> None:
        """Wake the relay; call after committing a transaction that appended through `conn`."""
        if self.wake is not None:
            with contextlib.suppress(Exception):  # a lost wake-up costs latency, never events
                await self.wake()

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Conn]:
        """A pooled connection in a transaction; the relay is woken once it has committed, if
        anything was appended in it (a projection's transaction appends nothing)."""
        appended = [False]
        token = _APPENDED_IN_TRANSACTION.set(appended)
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                yield conn
        finally:
            _APPENDED_IN_TRANSACTION.reset(token)
        if appended[0]:
            await self.committed()

    async def append(
        self,
        stream_id: str,
        events: Sequence[DomainEvent],
        *,
        expected_version: int,
        metadata: Metadata,
        ids: Sequence[UUID] | None = None,
        conn: Conn | None = None,
        savepoint: bool = True,
    ) -> list[Envelope]:
        """Append atomically. Raises ConcurrencyError when the stream is not at expected_version.

        Re-appending events whose ids are already stored in this stream is a no-op that returns
        the stored envelopes, so a retried command with the same ids is idempotent.

        In the caller's transaction (`conn`), the append runs in a savepoint so that a conflict
        leaves that transaction usable. `savepoint=False` saves those two round trips for a
        caller that abandons its transaction on ConcurrencyError anyway (it is then aborted):
        the conflict is raised at once, without the retry, the stored-ids check or the version
        lookup, which would need a usable transaction.
        """
        if not events:
            return []
        batch = encode_batch(
            self.registry,
            stream_id,
            events,
            expected_version=expected_version,
            metadata=metadata,
            ids=ids,
        )
        if conn is not None and not savepoint:
            # a unique violation has aborted the caller's transaction: nothing more to ask it
            return await self._append_once(conn, batch, savepoint=False)
        return await self._append_retrying(conn, batch, retried=ids is not None)

    async def _append_retrying(
        self, conn: Conn | None, batch: EncodedBatch, *, retried: bool
    ) -> list[Envelope]:
        """Append; on a conflict, answer with the stored events when this is a retry of an
        append that already happened (`retried`: the caller gave the ids), and under ANY try
        again: a conflict then always means another writer won a version, and every round has
        a winner, so retrying terminates."""
        stream_id, expected_version = batch.stream_id, batch.expected_version
        attempts = ANY_ATTEMPTS if expected_version == ANY else 1
        for attempt in range(1, attempts + 1):
            try:
                return await self._append_once(conn, batch)
            except ConcurrencyError as exc:
                # ids minted here are new, so cannot be stored yet. Checked after the failed
                # statement's connection or savepoint is released.
                if retried:
                    stored = await self._already_appended(stream_id, batch.ids, conn=conn)
                    if stored is not None:
                        return stored
                if attempt == attempts:
                    if exc.actual is None:
                        actual = await self.stream_version(stream_id, conn=conn)
                        raise ConcurrencyError(stream_id, expected_version, actual) from exc
                    raise
                if attempt > 2:
                    await asyncio.sleep(random.uniform(0, 0.002 * attempt))
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def _append_once(
        self, conn: Conn | None, batch: EncodedBatch, *, savepoint: bool = True
    ) -> list[Envelope]:
        """One try: on a pooled connection (its own transaction), or in the caller's
        transaction (in a savepoint unless told not to); wakes the relay when this was the
        outermost transaction, or marks the transaction as one that appended."""
        if conn is None:
            async with self.pool.acquire() as own:
                written = await self._append(own, batch)
            await self.committed()
            return written
        if savepoint:
            async with conn.transaction():
                written = await self._append(conn, batch)
        else:
            written = await self._append(conn, batch)
        if not conn.is_in_transaction():  # that transaction was the outermost one
            await self.committed()
        elif (appended := _APPENDED_IN_TRANSACTION.get()) is not None:
            appended[0] = True  # transaction() wakes the relay after its commit
        return written

    async def _append(self, conn: Conn, batch: EncodedBatch) -> list[Envelope]:
        try:
            answer = await conn.fetchrow(_APPEND, *batch.args())
        except asyncpg.UniqueViolationError as exc:
            raise ConcurrencyError(batch.stream_id, batch.expected_version, None) from exc
        if answer is None or answer["positions"] is None:  # the stream was not at `expected`
            actual = answer["before"] if answer is not None else None
            raise ConcurrencyError(batch.stream_id, batch.expected_version, actual)
        return self._stored(batch, answer)

    @staticmethod
    def _stored(batch: EncodedBatch, answer: asyncpg.Record) -> list[Envelope]:
        """The envelopes of the rows just written, from values encoded and checked before the
        write: nothing here may raise, for the rows may be committed already."""
        before, recorded_at = answer["before"], answer["recorded_at"]
        stream_id, metadata = batch.stream_id, batch.metadata
        make = Envelope.of_trusted_fields
        return [
            make(
                {
                    "id": event_id,
                    "stream_id": stream_id,
                    "version": version,
                    "type": item.event_type,
                    "schema_version": item.schema_version,
                    "data": data,
                    "metadata": metadata,
                    "recorded_at": recorded_at,
                    "position": position,
                }
            )
            for version, event_id, item, data, position in zip(
                range(before + 1, before + 1 + len(batch.events)),
                batch.ids,
                batch.events,
                batch.data,
                answer["positions"],
                strict=True,
            )
        ]

    async def _already_appended(
        self, stream_id: str, event_ids: list[UUID], *, conn: Conn | None = None
    ) -> list[Envelope] | None:
        """The stored envelopes when every one of `event_ids` is already in this stream."""
        sql = f"SELECT {COLUMNS} FROM eventstore.events WHERE id = ANY($1::uuid[]) ORDER BY version"
        async with self._connection(conn) as c:
            rows = await c.fetch(sql, event_ids)
        if len(rows) == len(event_ids) and all(r["stream_id"] == stream_id for r in rows):
            return [envelope_of(r) for r in rows]
        return None
