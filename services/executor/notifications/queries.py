"""Reads of `executor.notifications`: one user's notifications, newest first, keyset paged by
the position of each one's notification.created."""

from __future__ import annotations

import asyncpg

from libs.contracts.notifications import NotificationOut
from services.executor.queries import Db

_COLUMNS = (
    "notification_id, position, kind, message, ticket, approval_id, job_id, created_at, read_at"
)


def _out(row: asyncpg.Record) -> NotificationOut:
    return NotificationOut(
        id=row["notification_id"],
        kind=row["kind"],
        message=row["message"],
        ticket=row["ticket"],
        approval_id=row["approval_id"],
        job_id=row["job_id"],
        read=row["read_at"] is not None,
        read_at=row["read_at"],
        created_at=row["created_at"],
    )


async def list_for(
    db: Db, user_id: str, *, unread: bool, limit: int, before: int | None = None
) -> list[tuple[int, NotificationOut]]:
    """(position, notification) of `user_id`'s, newest first; `before` is the position of the
    previous page's last."""
    unread_only = " AND read_at IS NULL" if unread else ""  # the partial index serves it
    rows = await db.fetch(
        f"SELECT {_COLUMNS} FROM executor.notifications WHERE user_id = $1{unread_only} "
        "AND ($2::bigint IS NULL OR position < $2) ORDER BY position DESC LIMIT $3",
        user_id,
        before,
        limit,
    )
    return [(r["position"], _out(r)) for r in rows]


async def one(db: Db, notification_id: str) -> NotificationOut | None:
    row = await db.fetchrow(
        f"SELECT {_COLUMNS} FROM executor.notifications WHERE notification_id = $1",
        notification_id,
    )
    return None if row is None else _out(row)
