"""Who the executor can notify: reads of `executor.people` (projected by `executor-people`,
services/executor/people_projection.py): the active holders of a role, and who of some named
users is a known, active person."""

from __future__ import annotations

from services.executor.queries import Db


async def approvers(
    conn: Db, *, users: list[str], roles: list[str], exclude: str | None
) -> list[str]:
    """The named users plus the active holders of the roles, never `exclude` (the ticket's
    requester), sorted, each once."""
    rows = await conn.fetch(
        "SELECT user_id FROM executor.people WHERE active AND role = ANY($1::text[])",
        list(roles),
    )
    named = {r["user_id"] for r in rows} | set(users)
    if exclude is not None:
        named.discard(exclude)
    return sorted(named)


async def active(conn: Db, user_ids: list[str]) -> list[str]:
    """Those of `user_ids` that are known and not deactivated, sorted, each once."""
    rows = await conn.fetch(
        "SELECT user_id FROM executor.people WHERE active AND user_id = ANY($1::text[])",
        list(user_ids),
    )
    return sorted({r["user_id"] for r in rows})
