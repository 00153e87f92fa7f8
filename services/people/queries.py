"""Reads over the people tables: users, credentials, sessions and tokens."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TypeAlias

import asyncpg

from libs.contracts.people import TokenOut, UserOut
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


_USER = "SELECT user_id, email, name, role FROM people.users"


async def credentials(db: Db, email: str) -> tuple[UserRow, str] | None:
    """The user with this (normalised) email and their password hash."""
    row = await db.fetchrow(
        "SELECT user_id, email, name, role, password_hash FROM people.users WHERE email = $1",
        email,
    )
    return (UserRow.of(row), row["password_hash"]) if row else None


async def list_users(db: Db, *, limit: int, after: str | None) -> list[UserRow]:
    """Users in registration order (ids are time-ordered), after the id `after`."""
    rows = await db.fetch(
        f"{_USER} WHERE ($1::text IS NULL OR user_id > $1) ORDER BY user_id LIMIT $2",
        after,
        limit,
    )
    return [UserRow.of(r) for r in rows]


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
    revoked: bool

    def out(self) -> TokenOut:
        return TokenOut(id=self.id, name=self.name, scopes=self.scopes, created_at=self.created_at)


_TOKEN = (
    "SELECT token_id, user_id, name, scopes, created_at, revoked_at IS NOT NULL AS revoked "
    "FROM people.tokens"
)


def _token(row: asyncpg.Record) -> TokenRow:
    return TokenRow(
        id=row["token_id"],
        user_id=row["user_id"],
        name=row["name"],
        scopes=list(row["scopes"]),
        created_at=row["created_at"],
        revoked=row["revoked"],
    )


async def token_by_id(db: Db, token_id: str) -> TokenRow | None:
    row = await db.fetchrow(f"{_TOKEN} WHERE token_id = $1", token_id)
    return _token(row) if row else None


async def list_tokens(db: Db, *, user_id: str, limit: int, after: str | None) -> list[TokenRow]:
    """The user's tokens that are not revoked, oldest first, after the id `after`."""
    rows = await db.fetch(
        f"{_TOKEN} WHERE user_id = $1 AND revoked_at IS NULL "
        "AND ($2::text IS NULL OR token_id > $2) ORDER BY token_id LIMIT $3",
        user_id,
        after,
        limit,
    )
    return [_token(r) for r in rows]
