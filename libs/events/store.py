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
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from libs.events.db import Conn
from libs.events.envelope import Envelope, Metadata, new_id
from libs.events.registry import REGISTRY, DomainEvent, EventRegistry

NO_STREAM = 0
"""expected_version for "this stream must not exist yet"."""
ANY = -1
"""expected_version for "append whatever the stream's version is"."""


class StoreError(Exception):
    """Base of the event store's errors."""


class ConcurrencyError(StoreError):
    def __init__(self, stream_id: str, expected: int, actual: int | None) -> None:
        seen = "unknown" if actual is None else str(actual)
        super().__init__(f"stream {stream_id!r}: expected version {expected}, found {seen}")
        self.stream_id = stream_id
        self.expected = expected
        self.actual = actual


class EventTooLarge(StoreError):
    def __init__(self, type_name: str, size: int) -> None:
        super().__init__(
            f"a {type_name!r} event of {size} bytes is over the {MAX_EVENT_BYTES} bytes an event "
            "may have (the bus carries every event whole)"
        )
        self.size = size


class UnknownPosition(StoreError):
    def __init__(self, position: int) -> None:
        super().__init__(f"no event at global position {position}")
        self.position = position


@dataclass(frozen=True, order=True)
class CommitCursor:
    """A place in the global commit order: (writing transaction, position)."""

    tx_id: int = 0
    position: int = 0


START = CommitCursor()
MAX_EVENT_BYTES = 512 * 1024
"""An event's payload and metadata together; the bus refuses messages over its max_payload (1 MB
by default), and one refused message would stop the relay at it."""
_APPENDED_IN_TRANSACTION: ContextVar[list[bool] | None] = ContextVar("appended", default=None)
"""Set by `transaction()`: whether an append happened inside it, so it wakes the relay only then."""
ANY_ATTEMPTS = 100

_COLUMNS = "position, id, stream_id, version, type, schema_version, data, metadata, recorded_at"

_APPEND = """
WITH cur AS (
    SELECT coalesce(max(version), 0) AS v FROM eventstore.events WHERE stream_id = $1
)
INSERT INTO eventstore.events (id, stream_id, version, type, schema_version, data, metadata)
SELECT e.id, $1, cur.v + e.n, e.type, e.schema_version, e.data::jsonb, $6::text::jsonb
FROM cur, unnest($2::uuid[], $3::text[], $4::smallint[], $5::text[])
     WITH ORDINALITY AS e(id, type, schema_version, data, n)
WHERE $7::int < 0 OR cur.v = $7::int
RETURNING position, version, recorded_at
"""

_READ_AFTER = f"""
SELECT {_COLUMNS}, tx_id::text AS tx_text, held
FROM (
    SELECT e.*, false AS held FROM eventstore.events e
    WHERE e.tx_id < pg_snapshot_xmin(pg_current_snapshot())
      AND (e.tx_id, e.position) > ($1::text::xid8, $2::bigint)
      AND ($3::text[] IS NULL OR e.type = ANY($3::text[]))
    ORDER BY e.tx_id, e.position
    LIMIT $4
) rows
UNION ALL
SELECT {_COLUMNS}, tx_id::text, true FROM (
    SELECT * FROM eventstore.events
    WHERE tx_id >= pg_snapshot_xmin(pg_current_snapshot())
    LIMIT 1
) held_back
"""


def _envelope(row: asyncpg.Record) -> Envelope:
    # the row passed the table's constraints; only the metadata needs parsing into its types
    return Envelope.trusted(
        id=row["id"],
        stream_id=row["stream_id"],
        version=row["version"],
        type=row["type"],
        schema_version=row["schema_version"],
        data=row["data"],
        metadata=Metadata.model_validate(row["metadata"]),
        recorded_at=row["recorded_at"],
        position=row["position"],
    )


@dataclass(frozen=True)
class Batch:
    """A page of the global log, the cursor after it, and whether committed rows wait behind
    a still-running older transaction (the reader should look again shortly)."""

    events: list[Envelope]
    cursor: CommitCursor
    held_back: bool


class EventStore:
    """Append to and read from the log. Pass `conn` to join a caller's transaction."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        registry: EventRegistry = REGISTRY,
        wake: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.pool = pool
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

    @contextlib.asynccontextmanager
    async def _connection(self, conn: Conn | None) -> AsyncIterator[Conn]:
        """The caller's connection when given, else one borrowed from the pool."""
        if conn is not None:
            yield conn
            return
        async with self.pool.acquire() as own:
            yield own

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
        if ids is not None and len(ids) != len(events):
            raise ValueError("ids and events must have the same length")
        for item in events:
            if not self.registry.knows(item.event_type):
                raise StoreError(f"event type {item.event_type!r} is not registered")
        event_ids = list(ids) if ids is not None else [new_id() for _ in events]
        payloads = [e.model_dump_json() for e in events]
        meta = metadata.model_dump_json()
        room = MAX_EVENT_BYTES - len(meta.encode())
        for item, payload in zip(events, payloads, strict=True):
            # characters first (cheap), bytes only when it could matter
            if len(payload) * 4 > room and len(payload.encode()) > room:
                raise EventTooLarge(item.event_type, MAX_EVENT_BYTES - room + len(payload.encode()))
        args = (
            stream_id,
            event_ids,
            [e.event_type for e in events],
            [e.schema_version for e in events],
            payloads,
            meta,
            expected_version,
        )
        # Under ANY a conflict always means another writer won a version: trying again is safe
        # and terminates, since every round has a winner.
        attempts = ANY_ATTEMPTS if expected_version == ANY else 1
        if conn is not None and not savepoint:
            # a unique violation has aborted the caller's transaction: nothing more to ask it
            return await self._append_once(conn, args, events, event_ids, metadata, savepoint=False)
        for attempt in range(1, attempts + 1):
            try:
                return await self._append_once(conn, args, events, event_ids, metadata)
            except ConcurrencyError as exc:
                # A retry of an earlier append carries that append's ids (ids minted here are
                # new, so cannot be stored yet). Checked after the failed statement's
                # connection or savepoint is released.
                if ids is not None:
                    stored = await self._already_appended(stream_id, event_ids, conn=conn)
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
        self,
        conn: Conn | None,
        args: tuple[Any, ...],
        events: Sequence[DomainEvent],
        event_ids: list[UUID],
        metadata: Metadata,
        *,
        savepoint: bool = True,
    ) -> list[Envelope]:
        """One try: on a pooled connection (its own transaction), or in the caller's
        transaction (in a savepoint unless told not to); wakes the relay when this was the
        outermost transaction, or marks the transaction as one that appended."""
        if conn is None:
            async with self.pool.acquire() as own:
                written = await self._append(own, args, events, event_ids, metadata)
            await self.committed()
            return written
        if savepoint:
            async with conn.transaction():
                written = await self._append(conn, args, events, event_ids, metadata)
        else:
            written = await self._append(conn, args, events, event_ids, metadata)
        if not conn.is_in_transaction():  # that transaction was the outermost one
            await self.committed()
        elif (appended := _APPENDED_IN_TRANSACTION.get()) is not None:
            appended[0] = True  # transaction() wakes the relay after its commit
        return written

    async def _append(
        self,
        conn: Conn,
        args: tuple[Any, ...],
        events: Sequence[DomainEvent],
        event_ids: list[UUID],
        metadata: Metadata,
    ) -> list[Envelope]:
        stream_id, expected = args[0], args[-1]
        try:
            rows = await conn.fetch(_APPEND, *args)
        except asyncpg.UniqueViolationError as exc:
            raise ConcurrencyError(stream_id, expected, None) from exc
        if not rows:
            raise ConcurrencyError(
                stream_id, expected, await self.stream_version(stream_id, conn=conn)
            )
        return self._stored(stream_id, rows, events, event_ids, metadata)

    @staticmethod
    def _stored(
        stream_id: str,
        rows: list[asyncpg.Record],
        events: Sequence[DomainEvent],
        event_ids: list[UUID],
        metadata: Metadata,
    ) -> list[Envelope]:
        rows = sorted(rows, key=lambda r: r["version"])
        # built from values this method just validated and stored: no second validation pass
        return [
            Envelope.trusted(
                id=event_id,
                stream_id=stream_id,
                version=row["version"],
                type=item.event_type,
                schema_version=item.schema_version,
                data=item.model_dump(mode="json"),
                metadata=metadata,
                recorded_at=row["recorded_at"],
                position=row["position"],
            )
            for event_id, item, row in zip(event_ids, events, rows, strict=True)
        ]

    async def _already_appended(
        self, stream_id: str, event_ids: list[UUID], *, conn: Conn | None = None
    ) -> list[Envelope] | None:
        """The stored envelopes when every one of `event_ids` is already in this stream."""
        sql = (
            f"SELECT {_COLUMNS} FROM eventstore.events WHERE id = ANY($1::uuid[]) ORDER BY version"
        )
        async with self._connection(conn) as c:
            rows = await c.fetch(sql, event_ids)
        if len(rows) == len(event_ids) and all(r["stream_id"] == stream_id for r in rows):
            return [_envelope(r) for r in rows]
        return None

    async def stream_version(self, stream_id: str, *, conn: Conn | None = None) -> int:
        sql = "SELECT coalesce(max(version), 0) FROM eventstore.events WHERE stream_id = $1"
        async with self._connection(conn) as c:
            return int(await c.fetchval(sql, stream_id))

    async def read_stream(
        self,
        stream_id: str,
        *,
        from_version: int = 1,
        to_version: int | None = None,
        until: datetime | None = None,
        types: Sequence[str] | None = None,
        conn: Conn | None = None,
    ) -> list[Envelope]:
        """A stream's events in version order; `until` keeps those recorded at or before it."""
        sql = (
            f"SELECT {_COLUMNS} FROM eventstore.events WHERE stream_id = $1 AND version >= $2 "
            "AND ($3::int IS NULL OR version <= $3) "
            "AND ($4::timestamptz IS NULL OR recorded_at <= $4) "
            "AND ($5::text[] IS NULL OR type = ANY($5::text[])) ORDER BY version"
        )
        args = (stream_id, from_version, to_version, until, list(types) if types else None)
        async with self._connection(conn) as c:
            rows = await c.fetch(sql, *args)
        return [_envelope(r) for r in rows]

    async def read_batch(
        self,
        cursor: CommitCursor,
        *,
        types: Sequence[str] | None = None,
        limit: int = 500,
        conn: Conn | None = None,
    ) -> Batch:
        """The next committed events after `cursor` in commit order (never skips a late commit)."""
        args = (str(cursor.tx_id), cursor.position, list(types) if types else None, limit)
        async with self._connection(conn) as c:
            rows = await c.fetch(_READ_AFTER, *args)
        events = [r for r in rows if not r["held"]]
        held_back = len(events) < len(rows)
        if events:
            last = events[-1]
            cursor = CommitCursor(int(last["tx_text"]), last["position"])
        return Batch([_envelope(r) for r in events], cursor, held_back)

    async def read_stream_after(
        self,
        stream_id: str,
        cursor: CommitCursor,
        *,
        types: Sequence[str] | None = None,
        limit: int = 500,
        conn: Conn | None = None,
    ) -> list[Envelope]:
        """One stream's committed events after `cursor` in commit order (which, within a stream,
        is version order), read through the stream's own index instead of the global log."""
        sql = (
            f"SELECT {_COLUMNS} FROM eventstore.events WHERE stream_id = $1 "
            "AND (tx_id, position) > ($2::text::xid8, $3::bigint) "
            "AND tx_id < pg_snapshot_xmin(pg_current_snapshot()) "
            "AND ($4::text[] IS NULL OR type = ANY($4::text[])) ORDER BY version LIMIT $5"
        )
        args = (
            stream_id,
            str(cursor.tx_id),
            cursor.position,
            list(types) if types else None,
            limit,
        )
        async with self._connection(conn) as c:
            rows = await c.fetch(sql, *args)
        return [_envelope(r) for r in rows]

    async def cursor_at(self, position: int, *, conn: Conn | None = None) -> CommitCursor:
        """The commit-order cursor just after the event at `position` (0: the start)."""
        if position <= 0:
            return START
        sql = "SELECT tx_id::text FROM eventstore.events WHERE position = $1"
        async with self._connection(conn) as c:
            tx = await c.fetchval(sql, position)
        if tx is None:
            raise UnknownPosition(position)
        return CommitCursor(int(tx), position)

    async def read_all(
        self,
        after_position: int = 0,
        *,
        types: Sequence[str] | None = None,
        limit: int = 500,
        conn: Conn | None = None,
    ) -> list[Envelope]:
        """Committed events in commit order after the event at `after_position` (0: the start)."""
        cursor = await self.cursor_at(after_position, conn=conn)
        batch = await self.read_batch(cursor, types=types, limit=limit, conn=conn)
        return batch.events


def dump_envelope(envelope: Envelope) -> bytes:
    return envelope.model_dump_json().encode()


def load_envelope(payload: bytes) -> Envelope:
    return Envelope.model_validate_json(payload)  # parsed in pydantic-core: a third faster
