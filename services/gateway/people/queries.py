"""Reads over the gateway's authentication read model: users, live sessions and tokens, and
the sessions' last use (for idle expiry)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

import asyncpg

from libs.events.catalog.people import RoleName
from libs.events.db import Conn

Db: TypeAlias = "Conn | asyncpg.Pool"

IDLE_TIMEOUT_S = 12 * 3600
"""A session unused this long is over (sliding: every use moves it)."""
TOUCH_EVERY_S = 60
"""Record a session's use at most this often."""


@dataclass(frozen=True)
class UserRow:
    id: str
    email: str
    name: str
    role: RoleName

    @classmethod
    def of(cls, row: asyncpg.Record) -> UserRow:
        return cls(id=row["user_id"], email=row["email"], name=row["name"], role=row["role"])


async def user_by_id(db: Db, user_id: str) -> UserRow | None:
    row = await db.fetchrow(
        "SELECT user_id, email, name, role FROM gateway.users WHERE user_id = $1", user_id
    )
    return UserRow.of(row) if row else None


@dataclass(frozen=True)
class LiveSession:
    user: UserRow
    secret_hash: str
    needs_touch: bool


async def live_session(db: Db, session_id: str) -> LiveSession | None:
    """The session and its user when it has not ended, expired, or idled out (by the
    database's clock, which every replica shares)."""
    row = await db.fetchrow(
        """
        SELECT u.user_id, u.email, u.name, u.role, s.secret_hash,
               coalesce(a.last_seen, s.started_at) < now() - make_interval(secs => $3)
                   AS needs_touch
        FROM gateway.sessions s
        JOIN gateway.users u ON u.user_id = s.user_id
        LEFT JOIN gateway.session_activity a ON a.session_id = s.session_id
        WHERE s.session_id = $1 AND s.ended_at IS NULL AND s.expires_at > now()
          AND coalesce(a.last_seen, s.started_at) > now() - make_interval(secs => $2)
        """,
        session_id,
        IDLE_TIMEOUT_S,
        TOUCH_EVERY_S,
    )
    if row is None:
        return None
    return LiveSession(UserRow.of(row), row["secret_hash"], row["needs_touch"])


async def touch_session(db: Db, session_id: str) -> None:
    await db.execute(
        "INSERT INTO gateway.session_activity (session_id, last_seen) VALUES ($1, now()) "
        "ON CONFLICT (session_id) DO UPDATE SET last_seen = now()",
        session_id,
    )


@dataclass(frozen=True)
class TokenRow:
    id: str
    user_id: str
    scopes: list[str]
    token_hash: str
    revoked: bool


async def token_by_id(db: Db, token_id: str) -> TokenRow | None:
    row = await db.fetchrow(
        "SELECT token_id, user_id, scopes, token_hash, revoked_at IS NOT NULL AS revoked "
        "FROM gateway.tokens WHERE token_id = $1",
        token_id,
    )
    if row is None:
        return None
    return TokenRow(
        id=row["token_id"],
        user_id=row["user_id"],
        scopes=list(row["scopes"]),
        token_hash=row["token_hash"],
        revoked=row["revoked"],
    )
