"""Reads of the approvals service's own tables: requests (newest first, keyset pages) and
people (a voter's role, who the approvers of a request are)."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime
from typing import Any, TypeAlias

import asyncpg

from libs.contracts.approvals import ApprovalOut, ApprovalPage, ApprovalsListIn
from libs.events.db import Conn
from services.approvals.domain import Voter
from services.approvals.refusals import Refusal

Db: TypeAlias = "asyncpg.Pool[asyncpg.Record] | Conn"
MIN_AT = datetime(1970, 1, 1, tzinfo=UTC)
MAX_AT = datetime(9000, 1, 1, tzinfo=UTC)
"""The times a cursor may name: any request's creation lies between."""


def _encode(at: datetime, approval_id: str) -> str:
    raw = json.dumps({"at": at.isoformat(), "id": approval_id}).encode()
    return base64.urlsafe_b64encode(raw).decode()


def _decode(cursor: str) -> tuple[datetime, str]:
    """The (created_at, id) a page ended at; INVALID_CURSOR for anything this list never gave
    out (a time Postgres cannot hold, a NUL or an overlong id included)."""
    try:
        value = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        at = datetime.fromisoformat(value["at"]).astimezone(UTC)
        approval_id = value["id"]
        if not isinstance(approval_id, str) or "\x00" in approval_id or len(approval_id) > 100:
            raise ValueError("not an approval id")
        if not MIN_AT <= at <= MAX_AT:
            raise ValueError("out of range")
        return at, approval_id
    except (ValueError, KeyError, TypeError, OverflowError, binascii.Error) as exc:
        raise Refusal("INVALID_CURSOR", "the cursor is not one this list gave out") from exc


async def page(conn: Db, query: ApprovalsListIn) -> ApprovalPage:
    after: tuple[datetime, str] | None = _decode(query.cursor) if query.cursor else None
    args: list[Any] = [query.status, query.ticket, query.limit + 1]
    where = "($1::text IS NULL OR status = $1) AND ($2::text IS NULL OR ticket = $2)"
    if after is not None:
        where += " AND (created_at, approval_id) < ($4, $5)"
        args += [after[0], after[1]]
    rows = await conn.fetch(
        f"SELECT approval_id, body, created_at FROM approvals.requests WHERE {where} "
        "ORDER BY created_at DESC, approval_id DESC LIMIT $3",
        *args,
    )
    items = [ApprovalOut.model_validate(dict(r["body"])) for r in rows[: query.limit]]
    more = len(rows) > query.limit
    last = rows[query.limit - 1] if more else None
    cursor = _encode(last["created_at"], last["approval_id"]) if last is not None else None
    return ApprovalPage(items=items, next_cursor=cursor)


async def one(conn: Db, approval_id: str) -> ApprovalOut | None:
    raw = await conn.fetchval(
        "SELECT body FROM approvals.requests WHERE approval_id = $1", approval_id
    )
    return None if raw is None else ApprovalOut.model_validate(dict(raw))


async def voter(conn: Db, user_id: str) -> Voter:
    """Who `user_id` is to this service (someone it never heard of holds no role)."""
    row = await conn.fetchrow(
        "SELECT role, active FROM approvals.people WHERE user_id = $1", user_id
    )
    if row is None:
        return Voter(user_id=user_id, role=None, active=True)
    return Voter(user_id=user_id, role=row["role"], active=row["active"])


async def approvers(
    conn: Db, *, users: list[str], roles: list[str], exclude: str | None
) -> list[str]:
    """Who may vote now: the named users and the active holders of the roles, never `exclude`
    (the ticket's requester)."""
    rows = await conn.fetch(
        "SELECT user_id, active FROM approvals.people "
        "WHERE role = ANY($1::text[]) OR user_id = ANY($2::text[])",
        list(roles),
        list(users),
    )
    stopped = {r["user_id"] for r in rows if not r["active"]}
    found = {r["user_id"] for r in rows if r["active"]} | set(users)
    return sorted(found - stopped - {exclude or ""})
