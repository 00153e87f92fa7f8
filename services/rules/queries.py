"""Reads of the rules read model (schema `rules`): rules, their versions, the rule versions live
at an instant, the ticket right after an event, and stored events of some types since an instant."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, TypeAlias

import asyncpg

from libs.contracts.rules import RuleBody, RuleOut, RuleVersionOut
from libs.events.db import Conn
from libs.events.envelope import Envelope
from libs.events.log_reads import COLUMNS, envelope_of
from libs.rules.firing import RuleVersion

Db: TypeAlias = "Conn | asyncpg.Pool"
"""A connection, or the pool for a one-statement read."""

_RULE = (
    "SELECT id, version, enabled, archived, definition, created_at, updated_at FROM rules.rules "
)


def _rule_out(row: asyncpg.Record) -> RuleOut:
    return RuleOut.model_validate(
        {
            **row["definition"],
            "enabled": row["enabled"],
            "id": row["id"],
            "version": row["version"],
            "created_at": row["created_at"],
            "updated_at": row["updated_at"],
        }
    )


async def rule(conn: Db, rule_id: str, *, archived: bool = False) -> RuleOut | None:
    """The rule as read; None when there is none, or it is archived (unless `archived`)."""
    row = await conn.fetchrow(_RULE + "WHERE id = $1 AND (NOT archived OR $2)", rule_id, archived)
    return None if row is None else _rule_out(row)


async def rules(conn: Db, *, after: str | None, limit: int) -> list[RuleOut]:
    """Rules that are not archived, by id, after id `after`."""
    rows = await conn.fetch(
        _RULE + "WHERE NOT archived AND ($1::text IS NULL OR id > $1) ORDER BY id LIMIT $2",
        after,
        limit,
    )
    return [_rule_out(r) for r in rows]


async def versions(conn: Db, rule_id: str, *, after: int = 0, limit: int) -> list[RuleVersionOut]:
    rows = await conn.fetch(
        "SELECT rule_id, version, definition, created_at, created_by FROM rules.rule_versions "
        "WHERE rule_id = $1 AND version > $2 ORDER BY version LIMIT $3",
        rule_id,
        after,
        limit,
    )
    return [RuleVersionOut.model_validate(dict(r)) for r in rows]


async def version(conn: Db, rule_id: str, number: int) -> RuleVersion | None:
    raw = await conn.fetchval(
        "SELECT definition FROM rules.rule_versions WHERE rule_id = $1 AND version = $2",
        rule_id,
        number,
    )
    return None if raw is None else RuleVersion(rule_id, number, RuleBody.model_validate(raw))


async def live_versions(
    conn: Db, triggers: Sequence[str], *, position: int, at: datetime
) -> list[RuleVersion]:
    """The rule versions on one of `triggers` that were live just before the event at log
    `position`: each rule as its last event before that position left it (a state recorded
    before positions were kept is placed by its time, `at` being the event's)."""
    rows = await conn.fetch(
        "SELECT s.rule_id, s.version, v.definition FROM ("
        "  SELECT DISTINCT ON (rule_id) rule_id, version, live FROM rules.rule_states"
        "  WHERE position < $1 OR (position IS NULL AND at <= $2)"
        "  ORDER BY rule_id, seq DESC) s "
        "JOIN rules.rule_versions v ON v.rule_id = s.rule_id AND v.version = s.version "
        "WHERE s.live AND v.trigger = ANY($3::text[]) ORDER BY s.rule_id",
        position,
        at,
        list(triggers),
    )
    return [
        RuleVersion(r["rule_id"], r["version"], RuleBody.model_validate(r["definition"]))
        for r in rows
    ]


async def ticket_at(conn: Db, key: str, version: int) -> dict[str, Any] | None:
    """The ticket right after its stream's event `version`, as this service projected it."""
    raw = await conn.fetchval(
        "SELECT state FROM rules.ticket_versions WHERE key = $1 AND version = $2", key, version
    )
    return None if raw is None else dict(raw)


async def ticket_now(conn: Db, key: str) -> dict[str, Any] | None:
    raw = await conn.fetchval("SELECT state FROM rules.tickets WHERE key = $1", key)
    return None if raw is None else dict(raw)


async def events_since(
    conn: Db, types: Sequence[str], *, since: datetime, limit: int
) -> list[Envelope]:
    """Stored events of `types` recorded at or after `since`, oldest first (by position: a dry
    run reads history, where commit order and position order differ only by moments)."""
    rows = await conn.fetch(
        f"SELECT {COLUMNS} FROM eventstore.events WHERE type = ANY($1::text[]) "
        "AND recorded_at >= $2 ORDER BY position LIMIT $3",
        list(types),
        since,
        limit,
    )
    return [envelope_of(r) for r in rows]
