"""Reads over the gateway's authentication read model: users, live sessions and tokens, and
the sessions' last use (for idle expiry). A deactivated user, an ended or expired session and a
revoked or expired token authenticate nobody (by the database's clock, which replicas share)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
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
        WHERE s.session_id = $1 AND s.ended_at IS NULL AND s.expires_at > now() AND u.active
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
    """No longer usable: revoked (a deactivation revokes them all) or past its expiry."""


@dataclass(frozen=True)
class LiveToken:
    token: TokenRow
    user: UserRow | None
    """The token's owner while active (None once deactivated)."""


async def live_token(db: Db, token_id: str) -> LiveToken | None:
    """The token and its active owner in one read: what every request with a Bearer header
    asks."""
    row = await db.fetchrow(
        "SELECT t.token_id, t.user_id, t.scopes, t.token_hash, "
        "t.revoked_at IS NOT NULL OR coalesce(t.expires_at <= now(), false) AS revoked, "
        "u.user_id AS owner, u.email, u.name, u.role "
        "FROM gateway.tokens t "
        "LEFT JOIN gateway.users u ON u.user_id = t.user_id AND u.active "
        "WHERE t.token_id = $1",
        token_id,
    )
    if row is None:
        return None
    token = TokenRow(
        id=row["token_id"],
        user_id=row["user_id"],
        scopes=list(row["scopes"]),
        token_hash=row["token_hash"],
        revoked=row["revoked"],
    )
    user = None
    if row["owner"] is not None:
        user = UserRow(id=row["owner"], email=row["email"], name=row["name"], role=row["role"])
    return LiveToken(token, user)


@dataclass(frozen=True)
class SessionRow:
    id: str
    started_at: datetime
    last_seen_at: datetime
    expires_at: datetime


async def live_sessions(
    db: Db, user_id: str, *, limit: int, before: tuple[datetime, str] | None = None
) -> list[SessionRow]:
    """The user's sessions that still work (the same rule as live_session), newest first: at
    most `limit`, those after `before` (the started_at and id of the last one of the previous
    page) in that order."""
    rows = await db.fetch(
        """
        SELECT s.session_id, s.started_at, s.expires_at,
               coalesce(a.last_seen, s.started_at) AS last_seen
        FROM gateway.sessions s
        LEFT JOIN gateway.session_activity a ON a.session_id = s.session_id
        WHERE s.user_id = $1 AND s.ended_at IS NULL AND s.expires_at > now()
          AND coalesce(a.last_seen, s.started_at) > now() - make_interval(secs => $2)
          AND ($3::timestamptz IS NULL OR (s.started_at, s.session_id) < ($3, $4::text))
        ORDER BY s.started_at DESC, s.session_id DESC
        LIMIT $5
        """,
        user_id,
        IDLE_TIMEOUT_S,
        before[0] if before else None,
        before[1] if before else None,
        limit,
    )
    return [
        SessionRow(r["session_id"], r["started_at"], r["last_seen"], r["expires_at"]) for r in rows
    ]
