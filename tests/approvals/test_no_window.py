"""No window: the proof that no path changes a gated ticket's status before its approval.

Each round creates a production deployment while, at the same moment, an operator tries to
resolve it, a bulk close tries to close it, its requester tries to reopen it, and an ungated
automation rule on the same trigger tries to set it in progress. Not one ticket may leave
`open`. And a rule change that makes a rule gated applies to a whole event or not at all."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from libs.events.errors import ServiceError
from libs.events.testing import eventually
from libs.rules.firing import job_id
from tests.approvals.support import TERMINAL, Gate
from tests.tickets.support import ADMIN, ALICE, OPERATOR

ROUNDS = 200
Attempt = Callable[[str], Awaitable[bool]]


async def _next_key(gate: Gate) -> str:
    row = await gate.deps.pool.fetchrow("SELECT last_value, is_called FROM tickets.ticket_numbers")
    assert row is not None
    number = int(row["last_value"]) + (1 if row["is_called"] else 0)
    return f"OPS-{number}"


async def _spin(attempt: Attempt, key: str, successes: list[str]) -> None:
    """Try `attempt` on `key` from before it exists until it has been tried on the ticket."""
    for _ in range(4000):
        try:
            if await attempt(key):
                successes.append(key)
            return
        except ServiceError as refused:
            if refused.code != "NOT_FOUND":
                return
        await asyncio.sleep(0)


async def test_no_path_changes_a_gated_ticket_before_its_approval(gate: Gate) -> None:
    await gate.rule(actions=[{"type": "add_tag", "params": {"tag": "approved"}}])
    ungated: dict[str, Any] = await gate.call(
        "rules",
        "rules.create",
        {
            "definition": {
                "name": "Start prod deploys at once",
                "trigger": {"event": "ticket.created"},
                "conditions": {"field": "fields.environment", "op": "eq", "value": "production"},
                "actions": [{"type": "set_status", "params": {"status": "in_progress"}}],
            }
        },
        by=ADMIN,
    )

    async def resolve(key: str) -> bool:
        body = {"key": key, "status": "resolved"}
        await gate.desk.call("tickets.change_status", body, by=OPERATOR)
        return True

    async def bulk_close(key: str) -> bool:
        out = await gate.desk.call("tickets.bulk", {"keys": [key], "op": "close"}, by=OPERATOR)
        [result] = out["results"]
        if result["ok"]:
            return True
        raise ServiceError(result["status"] or 409, result["error"]["code"], "refused")

    async def reopen(key: str) -> bool:
        await gate.desk.call("tickets.change_status", {"key": key, "status": "open"}, by=ALICE)
        return True

    successes: list[str] = []
    keys: list[str] = []
    for _ in range(ROUNDS):
        key = await _next_key(gate)
        created, *_ = await asyncio.gather(
            gate.deploy(),
            _spin(resolve, key, successes),
            _spin(bulk_close, key, successes),
            _spin(reopen, key, successes),
        )
        assert created == key
        keys.append(key)
    assert successes == []

    async def automation_done() -> int:
        rows = await gate.deps.pool.fetch(
            "SELECT state FROM executor.jobs WHERE rule_id = $1", ungated["id"]
        )
        return sum(1 for r in rows if r["state"] in TERMINAL)

    await eventually(automation_done, until=lambda n: n == ROUNDS, timeout=120)
    rows = await gate.deps.pool.fetch(
        "SELECT stream_id, version, type FROM eventstore.events "
        "WHERE stream_id = ANY($1::text[]) ORDER BY stream_id, version",
        [f"ticket-{k}" for k in keys],
    )
    by_ticket: dict[str, list[str]] = {}
    for row in rows:
        by_ticket.setdefault(row["stream_id"], []).append(row["type"])
    assert len(by_ticket) == ROUNDS
    for types in by_ticket.values():
        assert types[:2] == ["ticket.created", "ticket.approval_requested"]
        assert "ticket.status_changed" not in types
    statuses = {(await gate.ticket(k))["status"] for k in keys[:10]}
    assert statuses == {"open"}


async def test_a_rule_made_gated_applies_to_whole_events_never_half(gate: Gate) -> None:
    rule = await gate.rule(approval=None)
    created: list[str] = []

    async def creator() -> None:
        for _ in range(25):
            created.append(await gate.deploy())

    async def make_it_gated() -> None:
        await eventually(lambda: asyncio.sleep(0, len(created)), until=lambda n: n >= 15)
        gated = {"approval": {"approvers": {"roles": ["admin"]}, "quorum": 1}}
        await gate.call(
            "rules",
            "rules.update",
            {"id": rule["id"], "changes": gated},
            by=ADMIN,
        )

    await asyncio.gather(creator(), creator(), creator(), make_it_gated())
    assert await versions_fired(gate, rule["id"], created) == {1, 2}


async def versions_fired(gate: Gate, rule_id: str, created: list[str]) -> set[int]:
    """The rule versions whose jobs the tickets got, checking that each ticket has a lock
    exactly when its job is of the gated version (2) and the lock names that version."""
    seen_versions: set[int] = set()
    for key in created:
        rows = await gate.deps.pool.fetch(
            "SELECT id, type, data FROM eventstore.events WHERE stream_id = $1 ORDER BY version",
            f"ticket-{key}",
        )
        trigger = rows[0]["id"]
        locks = [r for r in rows if r["type"] == "ticket.approval_requested"]

        async def job_of(key: str = key, trigger: object = trigger) -> int | None:
            for version in (1, 2):
                exists = await gate.deps.pool.fetchval(
                    "SELECT count(*) FROM eventstore.events WHERE stream_id = $1",
                    f"job-{job_id(rule_id, version, str(trigger))}",
                )
                if exists:
                    return version
            return None

        version = await eventually(job_of, timeout=20)
        assert version is not None, f"no job for {key}"
        seen_versions.add(version)
        if version == 2:
            assert len(locks) == 1 and locks[0]["data"]["details"]["rule_version"] == 2
        else:
            assert locks == []
    return seen_versions
