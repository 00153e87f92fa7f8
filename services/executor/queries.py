"""Reads of the executor's read model: jobs (filtered, keyset-paged newest first) and webhook
endpoints."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeAlias

import asyncpg

from libs.contracts.rules import JobOut
from libs.events.db import Conn
from services.executor.refusals import Refusal

Db: TypeAlias = "Conn | asyncpg.Pool"


def encode_cursor(position: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"before": position}).encode()).decode()


def decode_cursor(cursor: str) -> int:
    try:
        value = json.loads(base64.urlsafe_b64decode(cursor.encode()))["before"]
    except (ValueError, TypeError, KeyError, binascii.Error):
        value = None
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value < 2**63:
        raise Refusal("INVALID_CURSOR", "the cursor is not one this list gave out")
    return value


@dataclass(frozen=True)
class JobFilter:
    state: str | None = None
    ticket: str | None = None
    rule: str | None = None


async def list_jobs(
    db: Db, where: JobFilter, *, limit: int, before: int | None = None
) -> list[tuple[int, JobOut]]:
    """(position, job), newest first; `before` is the position of the previous page's last."""
    rows = await db.fetch(
        "SELECT position, job FROM executor.jobs WHERE ($1::text IS NULL OR state = $1) "
        "AND ($2::text IS NULL OR ticket = $2) AND ($3::text IS NULL OR rule_id = $3) "
        "AND ($4::bigint IS NULL OR position < $4) ORDER BY position DESC LIMIT $5",
        where.state,
        where.ticket,
        where.rule,
        before,
        limit,
    )
    return [(r["position"], JobOut.model_validate(r["job"])) for r in rows]


async def job_exists(db: Db, job_id: str) -> bool:
    return bool(await db.fetchval("SELECT 1 FROM executor.jobs WHERE job_id = $1", job_id))


@dataclass(frozen=True)
class WebhookRow:
    webhook_id: str
    position: int
    name: str
    kind: str
    url: str
    secret: str | None
    events: list[str] | None
    include_internal: bool
    removed: bool
    created_at: datetime
    updated_at: datetime


def _webhook(row: asyncpg.Record) -> WebhookRow:
    values: dict[str, Any] = dict(row)
    if isinstance(values["events"], str):
        values["events"] = json.loads(values["events"])
    return WebhookRow(**values)


_WEBHOOK_COLUMNS = (
    "webhook_id, position, name, kind, url, secret, events, include_internal, removed, "
    "created_at, updated_at"
)


async def webhook(db: Db, webhook_id: str) -> WebhookRow | None:
    row = await db.fetchrow(
        f"SELECT {_WEBHOOK_COLUMNS} FROM executor.webhooks WHERE webhook_id = $1", webhook_id
    )
    return _webhook(row) if row is not None else None


async def list_webhooks(db: Db, *, limit: int, after: int | None = None) -> list[WebhookRow]:
    """Oldest first; `after` is the position of the previous page's last."""
    rows = await db.fetch(
        f"SELECT {_WEBHOOK_COLUMNS} FROM executor.webhooks WHERE NOT removed "
        "AND ($1::bigint IS NULL OR position > $1) ORDER BY position LIMIT $2",
        after,
        limit,
    )
    return [_webhook(r) for r in rows]
