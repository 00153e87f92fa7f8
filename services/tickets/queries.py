"""Reads of the tickets read model: tickets (filtered, keyset-paged), comments and types (paged
too), people."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeAlias

import asyncpg

from libs.contracts.tickets import CommentOut, TicketTypeOut
from libs.events.db import Conn
from services.tickets import cursors
from services.tickets.fields import TicketTypeSchema
from services.tickets.state import TicketState

Db: TypeAlias = "Conn | asyncpg.Pool"
"""A connection, or the pool for a one-statement read."""


@dataclass(frozen=True)
class TicketFilter:
    """What a list or export keeps; `requester_id` is forced for requesters."""

    status: str | None = None
    type: str | None = None
    priority: str | None = None
    assignee: str | None = None
    tag: str | None = None
    q: str | None = None
    requester_id: str | None = None


def encode_cursor(number: int) -> str:
    """An opaque cursor: the page after it starts below ticket `number` (newest first)."""
    return cursors.encode_cursor("before", number)


def decode_cursor(cursor: str) -> int:
    return cursors.decode_number(cursor, "before", maximum=2**31 - 1)


def _like(text: str) -> str:
    """An ILIKE pattern matching `text` anywhere, with the pattern characters escaped."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


async def list_tickets(
    conn: Db, where: TicketFilter, *, limit: int, before: int | None = None
) -> list[TicketState]:
    """Newest first; `before` is the number of the last ticket of the previous page."""
    rows = await conn.fetch(
        "SELECT state FROM tickets.tickets WHERE "
        "($1::text IS NULL OR status = $1) AND ($2::text IS NULL OR type = $2) "
        "AND ($3::text IS NULL OR priority = $3) AND ($4::text IS NULL OR assignee_id = $4) "
        "AND ($5::text IS NULL OR tags @> ARRAY[$5::text]) "
        "AND ($6::text IS NULL OR title ILIKE $6 OR description ILIKE $6 OR key = upper($7)) "
        "AND ($8::text IS NULL OR requester_id = $8) AND ($9::bigint IS NULL OR number < $9) "
        "ORDER BY number DESC LIMIT $10",
        where.status,
        where.type,
        where.priority,
        where.assignee,
        where.tag,
        _like(where.q) if where.q else None,
        where.q,
        where.requester_id,
        before,
        limit,
    )
    return [TicketState.model_validate(r["state"]) for r in rows]


async def ticket(conn: Db, key: str) -> TicketState | None:
    raw = await conn.fetchval("SELECT state FROM tickets.tickets WHERE key = $1", key)
    return None if raw is None else TicketState.model_validate(raw)


async def requester_of(conn: Db, key: str) -> str | None:
    """The ticket's requester, or None when there is no such ticket."""
    value = await conn.fetchval("SELECT requester_id FROM tickets.tickets WHERE key = $1", key)
    return None if value is None else str(value)


@dataclass(frozen=True)
class CommentRow:
    """A comment and its position in the log (its order on the ticket, and its cursor)."""

    position: int
    comment: CommentOut


async def comments(
    conn: Db, key: str, *, with_internal: bool, after: int = 0, limit: int
) -> list[CommentRow]:
    """The ticket's comments in order after position `after`; internal ones only
    `with_internal` (the policy's answer for the caller; it filters again)."""
    rows = await conn.fetch(
        "SELECT position, id, author_id, body, internal, created_at FROM tickets.comments "
        "WHERE key = $1 AND position > $2 AND ($3 OR NOT internal) ORDER BY position LIMIT $4",
        key,
        after,
        with_internal,
        limit,
    )
    return [CommentRow(r["position"], CommentOut.model_validate(dict(r))) for r in rows]


@dataclass(frozen=True)
class TypeRow:
    key: str
    name: str
    version: int
    builtin: bool
    fields: list[dict[str, Any]]

    @property
    def schema(self) -> TicketTypeSchema:
        return TicketTypeSchema.model_validate({"fields": self.fields})

    def view(self) -> TicketTypeOut:
        return TicketTypeOut.model_validate(
            {
                "key": self.key,
                "name": self.name,
                "version": self.version,
                "builtin": self.builtin,
                "fields": self.fields,
            }
        )


_TYPE = (
    "SELECT v.key, v.name, v.version, t.builtin, v.fields FROM tickets.types t "
    "JOIN tickets.type_versions v ON v.key = t.key "
)


async def ticket_type(conn: Db, key: str, version: int | None = None) -> TypeRow | None:
    """A type at `version` (default: its latest)."""
    row = await conn.fetchrow(
        _TYPE + "WHERE t.key = $1 AND v.version = coalesce($2, t.version)", key, version
    )
    return None if row is None else TypeRow(**dict(row))


async def ticket_types(conn: Db, *, after: str | None = None, limit: int) -> list[TypeRow]:
    """Types at their latest version, by key, after key `after`."""
    rows = await conn.fetch(
        _TYPE + "WHERE v.version = t.version AND ($1::text IS NULL OR t.key > $1) "
        "ORDER BY t.key LIMIT $2",
        after,
        limit,
    )
    return [TypeRow(**dict(r)) for r in rows]


async def is_staff(conn: Db, user_id: str) -> bool:
    role = await conn.fetchval("SELECT role FROM tickets.people WHERE user_id = $1", user_id)
    return role in ("operator", "admin")
