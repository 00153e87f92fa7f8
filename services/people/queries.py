"""Reads over the people tables: users, credentials, sessions and tokens."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TypeAlias

import asyncpg

from libs.contracts.people import MemberOut, TokenOut, UserOut
from libs.events.catalog.people import RoleName, Scope
from libs.events.db import Conn

Db: TypeAlias = "Conn | asyncpg.Pool"


@dataclass(frozen=True)
class UserRow:
    id: str
    email: str
    name: str
    role: RoleName

    @classmethod
    def of(cls, row: asyncpg.Record) -> UserRow:
        return cls(id=row["user_id"], email=row["email"], name=row["name"], role=row["role"])

    def out(self) -> UserOut:
        return UserOut(id=self.id, email=self.email, name=self.name, role=self.role)


_USER = "SELECT user_id, email, name, role, active FROM people.users"


@dataclass(frozen=True)
class Credentials:
    user: UserRow
    password_hash: str
    active: bool


async def credentials(db: Db, email: str) -> Credentials | None:
    """The user with this (normalised) email, their password hash and whether they may sign in."""
    row = await db.fetchrow(
        "SELECT user_id, email, name, role, password_hash, active FROM people.users "
        "WHERE email = $1",
        email,
    )
    return Credentials(UserRow.of(row), row["password_hash"], row["active"]) if row else None


def _member(row: asyncpg.Record) -> MemberOut:
    return MemberOut(
        id=row["user_id"],
        email=row["email"],
        name=row["name"],
        role=row["role"],
        active=row["active"],
    )


async def list_users(db: Db, *, limit: int, after: str | None) -> list[MemberOut]:
    """Users in registration order (ids are time-ordered), after the id `after`; deactivated
    ones too."""
    rows = await db.fetch(
        f"{_USER} WHERE ($1::text IS NULL OR user_id > $1) ORDER BY user_id LIMIT $2",
        after,
        limit,
    )
    return [_member(r) for r in rows]


async def session_owner(db: Db, session_id: str) -> str | None:
    """Whose session this is (ended or not)."""
    owner: str | None = await db.fetchval(
        "SELECT user_id FROM people.sessions WHERE session_id = $1", session_id
    )
    return owner


@dataclass(frozen=True)
class TokenRow:
    id: str
    user_id: str
    name: str
    scopes: list[Scope]
    created_at: datetime
    expires_at: datetime | None
    revoked: bool

    def out(self) -> TokenOut:
        return TokenOut(
            id=self.id,
            name=self.name,
            scopes=self.scopes,
            created_at=self.created_at,
            expires_at=self.expires_at,
        )


_TOKEN = (
    "SELECT token_id, user_id, name, scopes, created_at, expires_at, "
    "revoked_at IS NOT NULL AS revoked FROM people.tokens"
)
_LIVE = "revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())"


def _token(row: asyncpg.Record) -> TokenRow:
    return TokenRow(
        id=row["token_id"],
        user_id=row["user_id"],
        name=row["name"],
        scopes=list(row["scopes"]),
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        revoked=row["revoked"],
    )


async def token_by_id(db: Db, token_id: str) -> TokenRow | None:
    row = await db.fetchrow(f"{_TOKEN} WHERE token_id = $1", token_id)
    return _token(row) if row else None


async def list_tokens(db: Db, *, user_id: str, limit: int, after: str | None) -> list[TokenRow]:
    """The user's live tokens (neither revoked nor expired), oldest first, after the id
    `after`."""
    rows = await db.fetch(
        f"{_TOKEN} WHERE user_id = $1 AND {_LIVE} "
        "AND ($2::text IS NULL OR token_id > $2) ORDER BY token_id LIMIT $3",
        user_id,
        after,
        limit,
    )
    return [_token(r) for r in rows]


@dataclass(frozen=True)
class LiveTokens:
    count: int
    next_expiry_s: int | None
    """Seconds until the first of them expires (None: none expire on their own)."""


async def live_token_count(db: Db, user_id: str) -> LiveTokens:
    row = await db.fetchrow(
        f"SELECT count(*) AS n, ceil(extract(epoch FROM min(expires_at) - now()))::int AS next "
        f"FROM people.tokens WHERE user_id = $1 AND {_LIVE}",
        user_id,
    )
    return LiveTokens(count=row["n"] if row else 0, next_expiry_s=row["next"] if row else None)
