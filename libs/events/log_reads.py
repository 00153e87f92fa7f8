"""Reading the log: a stream in version order, the global log in commit order (gap-safe: only
rows of transactions older than the oldest still running), and envelopes to and from bytes.

`LogReader` is the read half of `EventStore` (libs/events/store.py), which adds appends."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from libs.events.db import Conn
from libs.events.envelope import Envelope, Metadata
from libs.events.store_errors import UnknownPosition

COLUMNS = "position, id, stream_id, version, type, schema_version, data, metadata, recorded_at"


@dataclass(frozen=True, order=True)
class CommitCursor:
    """A place in the global commit order: (writing transaction, position)."""

    tx_id: int = 0
    position: int = 0


START = CommitCursor()

_READ_AFTER = f"""
SELECT {COLUMNS}, tx_id::text AS tx_text, held
FROM (
    SELECT e.*, false AS held FROM eventstore.events e
    WHERE e.tx_id < pg_snapshot_xmin(pg_current_snapshot())
      AND (e.tx_id, e.position) > ($1::text::xid8, $2::bigint)
      AND ($3::text[] IS NULL OR e.type = ANY($3::text[]))
    ORDER BY e.tx_id, e.position
    LIMIT $4
) rows
UNION ALL
SELECT {COLUMNS}, tx_id::text, true FROM (
    SELECT * FROM eventstore.events
    WHERE tx_id >= pg_snapshot_xmin(pg_current_snapshot())
    LIMIT 1
) held_back
"""


def envelope_of(row: asyncpg.Record) -> Envelope:
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


class LogReader:
    """Reads over a pool, or over the caller's connection when one is given."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    @contextlib.asynccontextmanager
    async def _connection(self, conn: Conn | None) -> AsyncIterator[Conn]:
        """The caller's connection when given, else one borrowed from the pool."""
        if conn is not None:
            yield conn
            return
        async with self.pool.acquire() as own:
            yield own

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
            f"SELECT {COLUMNS} FROM eventstore.events WHERE stream_id = $1 AND version >= $2 "
            "AND ($3::int IS NULL OR version <= $3) "
            "AND ($4::timestamptz IS NULL OR recorded_at <= $4) "
            "AND ($5::text[] IS NULL OR type = ANY($5::text[])) ORDER BY version"
        )
        args = (stream_id, from_version, to_version, until, list(types) if types else None)
        async with self._connection(conn) as c:
            rows = await c.fetch(sql, *args)
        return [envelope_of(r) for r in rows]

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
        return Batch([envelope_of(r) for r in events], cursor, held_back)

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
            f"SELECT {COLUMNS} FROM eventstore.events WHERE stream_id = $1 "
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
        return [envelope_of(r) for r in rows]

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
