"""Hostile review of the approval gate itself: other triggers, several gates on one ticket,
decisions that outrun the rules service, votes racing expiry.

Tests marked `Fixed` proved a defect as first reviewed; the others document what held."""

from __future__ import annotations

import asyncio
from typing import Any

from libs.events.errors import ServiceError
from libs.events.settings import Settings
from libs.events.testing import eventually, isolated_system
from libs.rules.firing import approval_id, job_id
from services.approvals.app import SERVICE as APPROVALS
from services.executor.app import SERVICE as EXECUTOR
from services.rules.app import SERVICE as RULES
from services.tickets.app import SERVICE as TICKETS
from tests.approvals.support import Gate, gated_rule
from tests.executor.conftest import FAST
from tests.tickets.support import ADMIN, OPERATOR, PEOPLE, seed_people

ADMINS_APPROVE: dict[str, Any] = {"approvers": {"roles": ["admin"]}, "quorum": 1}


async def _rows(gate: Gate, key: str) -> list[Any]:
    return list(
        await gate.deps.pool.fetch(
            "SELECT type, tx_id, id, data FROM eventstore.events WHERE stream_id = $1 "
            "ORDER BY version",
            f"ticket-{key}",
        )
    )


async def _requests(gate: Gate, key: str, count: int) -> list[dict[str, Any]]:
    async def probe() -> list[dict[str, Any]]:
        page = await gate.call("approvals", "approvals.list", {"ticket": key}, by=ADMIN)
        return list(page["items"])

    found = await eventually(probe, until=lambda items: len(items) >= count, timeout=20)
    assert found is not None and len(found) == count, found
    return found


# --- holds ---------------------------------------------------------------------------------


async def test_a_gated_rule_on_resolve_locks_in_the_resolving_transaction(gate: Gate) -> None:
    rule = await gate.rule(
        trigger={"event": "ticket.status_changed", "to": "resolved"},
        conditions=None,
        actions=[{"type": "add_tag", "params": {"tag": "resolution-approved"}}],
    )
    key = await gate.deploy()
    await gate.desk.move(key, "resolved", by=OPERATOR)
    rows = await _rows(gate, key)
    types = [r["type"] for r in rows]
    assert types[-2:] == ["ticket.status_changed", "ticket.approval_requested"], types
    assert rows[-1]["tx_id"] == rows[-2]["tx_id"]
    expected = approval_id(job_id(rule["id"], 1, rows[-2]["id"]))
    assert rows[-1]["data"]["approval_id"] == expected
    refused = await gate.desk.refused(
        "tickets.change_status", {"key": key, "status": "closed"}, by=OPERATOR
    )
    assert refused.code == "PENDING_APPROVAL"
    [request] = await _requests(gate, key, 1)
    assert request["id"] == expected


async def test_a_gate_on_approval_decided_locks_in_the_releasing_transaction(gate: Gate) -> None:
    """Chained gates: deciding the first releases its lock and takes the second's in one
    transaction, so the ticket is never unlocked in between."""
    await gate.rule(approval=ADMINS_APPROVE)
    second = await gate.rule(
        name="A second look",
        trigger={"event": "approval.decided"},
        conditions=None,
        actions=[{"type": "add_tag", "params": {"tag": "second-look"}}],
        approval={"approvers": {"roles": ["operator"]}, "quorum": 1},
    )
    key = await gate.deploy()
    [first] = await _requests(gate, key, 1)
    await gate.vote(first["id"], "approve", by=ADMIN)
    rows = await _rows(gate, key)
    types = [r["type"] for r in rows]
    assert types[-2:] == ["ticket.approval_decided", "ticket.approval_requested"], types
    assert rows[-1]["tx_id"] == rows[-2]["tx_id"]
    expected = approval_id(job_id(second["id"], 1, rows[-2]["id"]))
    assert rows[-1]["data"]["approval_id"] == expected
    assert (await gate.ticket(key))["locked"] is True
    requests = await _requests(gate, key, 2)
    chained = next(r for r in requests if r["id"] == expected)
    assert chained["job_ids"] == [job_id(second["id"], 1, rows[-2]["id"])]
    await gate.vote(expected, "approve", by=OPERATOR)
    assert (await gate.job(chained["job_ids"][0]))["state"] == "succeeded"


async def test_a_gate_on_approval_decided_does_not_relock_the_ticket_forever(gate: Gate) -> None:
    """Fixed (high): a gated rule on `approval.decided` fires on the release of its own
    request too (the release is written by the `approvals` service, which the loop guard does
    not count as automation), so every decision, approve, reject or expiry, takes a new lock:
    the ticket never leaves its status again until the rule is archived. Reject must release."""
    await gate.rule(approval=ADMINS_APPROVE)
    await gate.rule(
        name="A second look",
        trigger={"event": "approval.decided"},
        conditions=None,
        actions=[{"type": "add_tag", "params": {"tag": "second-look"}}],
        approval={"approvers": {"roles": ["operator"]}, "quorum": 1},
    )
    key = await gate.deploy()
    [first] = await _requests(gate, key, 1)
    await gate.vote(first["id"], "approve", by=ADMIN)
    requests = await _requests(gate, key, 2)
    chained = next(r for r in requests if r["id"] != first["id"])
    await gate.vote(chained["id"], "reject", by=OPERATOR, reason="no second look needed")
    await asyncio.sleep(1)
    types = await gate.stream_types(key)
    assert types.count("ticket.approval_requested") == 2, types
    assert (await gate.ticket(key))["locked"] is False


async def test_a_vote_racing_the_expiry_timer_decides_once(gate: Gate) -> None:
    await gate.rule(approval={"approvers": {"roles": ["admin"]}, "expires_in": "1s"})
    for _ in range(3):
        key = await gate.deploy()
        [request] = await _requests(gate, key, 1)
        outcome: Any = None
        for _ in range(400):
            try:
                outcome = await gate.vote(request["id"], "approve", by=ADMIN)
                break
            except ServiceError as refused:
                outcome = refused
                if refused.code == "ALREADY_DECIDED":
                    break
                raise
        final = await gate.call("approvals", "approvals.get", {"id": request["id"]}, by=ADMIN)
        assert final["status"] in ("approved", "expired")
        job = await gate.job(final["job_ids"][0])
        want = "succeeded" if final["status"] == "approved" else "skipped"
        assert job["state"] == want, (final["status"], job)
        assert (await gate.ticket(key))["locked"] is False
        assert len([d for d in final["decisions"]]) == (1 if final["status"] == "approved" else 0)
        del outcome


# --- found by the attack, fixed since ------------------------------------------------------------


async def test_an_approved_job_runs_even_when_another_gate_still_holds_the_ticket(
    gate: Gate,
) -> None:
    """Fixed (medium): two gated rules on one event lock the ticket twice. Approving the
    one whose job changes the status releases only its own lock: its job's set_status meets the
    other lock (PENDING_APPROVAL, retryable), exhausts its attempts and is dead-lettered, so an
    approved action never runs, even once the other request is approved too. Approve must run
    the job (e.g. it waits for the ticket to be unlocked, or the locks are released together)."""
    resolve = await gate.rule(
        name="Resolve prod deploys",
        actions=[{"type": "set_status", "params": {"status": "in_progress"}}],
        approval=ADMINS_APPROVE,
    )
    await gate.rule(name="Tag prod deploys", approval=ADMINS_APPROVE)
    key = await gate.deploy()
    rows = await _rows(gate, key)
    assert [r["type"] for r in rows[:3]] == [
        "ticket.created",
        "ticket.approval_requested",
        "ticket.approval_requested",
    ]
    requests = await _requests(gate, key, 2)
    first = next(r for r in requests if r["rule_id"] == resolve["id"])
    other = next(r for r in requests if r["rule_id"] != resolve["id"])
    await gate.vote(first["id"], "approve", by=ADMIN)
    await asyncio.sleep(3)  # the executor's attempts (FAST: 3, 0.2s apart) are over by now
    await gate.vote(other["id"], "approve", by=ADMIN)
    job = await gate.job(first["job_ids"][0])
    assert job["state"] == "succeeded", job
    assert (await gate.ticket(key))["status"] == "in_progress"


async def test_a_decision_that_outruns_the_rules_service_still_moves_its_job(
    settings: Settings, database_url: str, nats_url: str
) -> None:
    """Found by the attack (was high): the approvals service opens the request from the ticket's
    lock, so a request can be decided while the rules service (down, lagging) has not queued
    the job yet. The decision used to be retried until parked, and the job, queued later, waited
    `pending_approval` forever. Now the job's own job.approval_requested finds the decision."""
    fast = settings.model_copy(update=FAST)

    async with isolated_system(fast, database_url, nats_url, services=(RULES,), replica="r0") as r:
        await r.rpc.call(
            "rules",
            "rules.create",
            {"definition": gated_rule()},
            actor=ADMIN.actor,
            role=ADMIN.role,
        )

    rest = isolated_system(
        fast,
        database_url,
        nats_url,
        services=(TICKETS, EXECUTOR, APPROVALS),
        replica="r1",
        timers=True,
    )
    async with rest as deps:
        await seed_people(deps)

        async def known() -> int:
            return int(await deps.pool.fetchval("SELECT count(*) FROM approvals.people"))

        await eventually(known, until=lambda n: n == len(PEOPLE))
        gate = Gate(deps)
        key = await gate.deploy()
        request = await gate.approval_of(key)
        decided = await gate.vote(request["id"], "approve", by=OPERATOR)
        assert decided["status"] == "approved"

        async def unlocked() -> bool:
            return (await gate.ticket(key))["locked"] is False

        assert await eventually(unlocked, timeout=20)

        async def parked() -> int:
            return int(
                await deps.pool.fetchval(
                    "SELECT count(*) FROM eventstore.parked_events "
                    "WHERE consumer LIKE 'executor-approval%'"
                )
            )

        await asyncio.sleep(3)  # executor-approvals has handled the decision meanwhile
        assert await parked() == 0  # a decision whose job is not queued yet is not an error

        # the rules service comes back and queues the job
        again = isolated_system(fast, database_url, nats_url, services=(RULES,), replica="r0")
        async with again:
            job = await gate.job(request["job_ids"][0], settled=False)  # queued now

            async def state() -> str:
                return str((await gate.job(request["job_ids"][0], settled=False))["state"])

            final = await eventually(state, until=lambda s: s == "succeeded", timeout=20)
            assert final == "succeeded", job  # stays pending_approval forever


async def test_a_gated_rule_on_a_trigger_outside_the_ticket_stream_is_refused(gate: Gate) -> None:
    """Found by the attack (was medium): `job.dead_lettered` names a ticket but is written to a
    job's stream, where no gate is held, so a gated rule on it opened a request and never locked
    the ticket. Such a gate is now refused when the rule is written, with the reason."""
    refused = await gate.refused(
        "rules",
        "rules.create",
        {
            "definition": {
                "name": "Approve the fallback",
                "trigger": {"event": "job.dead_lettered"},
                "on_automation": True,
                "actions": [{"type": "add_tag", "params": {"tag": "fallback"}}],
                "approval": ADMINS_APPROVE,
            }
        },
        by=ADMIN,
    )
    assert refused.status == 422 and refused.code == "INVALID_RULE"
    paths = {e["path"] for e in refused.details or []}
    assert "approval" in paths, refused.details
