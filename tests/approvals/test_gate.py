"""The gate end to end: a gated rule locks the ticket in the very append of its trigger, the
approvals service opens one request, a decision releases the lock and moves the job on."""

from __future__ import annotations

import asyncio

from libs.rules.firing import approval_id, job_id
from tests.approvals.support import Gate
from tests.tickets.support import ADMIN, ALICE, BOB, OPERATOR


async def test_the_lock_is_written_in_the_transaction_that_creates_the_ticket(gate: Gate) -> None:
    rule = await gate.rule()
    key = await gate.deploy()
    rows = await gate.deps.pool.fetch(
        "SELECT type, tx_id, id FROM eventstore.events WHERE stream_id = $1 ORDER BY version",
        f"ticket-{key}",
    )
    assert [r["type"] for r in rows[:2]] == ["ticket.created", "ticket.approval_requested"]
    assert rows[0]["tx_id"] == rows[1]["tx_id"]
    ticket = await gate.ticket(key)
    expected = approval_id(job_id(rule["id"], 1, rows[0]["id"]))
    assert ticket["locked"] is True and ticket["pending_approval"]["approval_id"] == expected
    refused = await gate.desk.refused(
        "tickets.change_status", {"key": key, "status": "resolved"}, by=OPERATOR
    )
    assert refused.status == 409 and refused.code == "PENDING_APPROVAL"


async def test_an_ungated_ticket_is_not_locked(gate: Gate) -> None:
    await gate.rule()
    key = await gate.deploy(environment="staging")
    assert "ticket.approval_requested" not in await gate.stream_types(key)
    moved = await gate.desk.move(key, "in_progress", by=OPERATOR)
    assert moved["status"] == "in_progress"


async def test_approval_releases_the_lock_and_runs_the_job(gate: Gate) -> None:
    await gate.rule()
    key = await gate.deploy()
    request = await gate.approval_of(key)
    [job] = request["job_ids"]
    waiting = await gate.job(job, settled=False)
    assert waiting["state"] == "pending_approval" and waiting["approval_id"] == request["id"]
    decided = await gate.vote(request["id"], "approve", by=OPERATOR, reason="window is open")
    assert decided["status"] == "approved"
    assert decided["decisions"][0]["user_id"] == OPERATOR.id
    assert decided["decisions"][0]["reason"] == "window is open"
    assert (await gate.job(job))["state"] == "succeeded"
    ticket = await gate.ticket(key)
    assert ticket["locked"] is False and "approved" in ticket["tags"]
    assert (await gate.desk.move(key, "in_progress"))["status"] == "in_progress"


async def test_rejection_skips_the_job_and_releases_the_lock(gate: Gate) -> None:
    await gate.rule()
    key = await gate.deploy()
    request = await gate.approval_of(key)
    decided = await gate.vote(request["id"], "reject", by=ADMIN, reason="freeze")
    assert decided["status"] == "rejected"
    job = await gate.job(request["job_ids"][0])
    assert job["state"] == "skipped" and job["skip_reason"] == "approval_rejected"
    ticket = await gate.ticket(key)
    assert ticket["locked"] is False and "approved" not in ticket["tags"]


async def test_an_unanswered_request_expires_skips_its_job_and_releases_the_lock(
    gate: Gate,
) -> None:
    await gate.rule(approval={"approvers": {"roles": ["admin"]}, "expires_in": "1s"})
    key = await gate.deploy()
    request = await gate.approval_of(key)
    job = await gate.job(request["job_ids"][0])
    assert job["state"] == "skipped" and job["skip_reason"] == "approval_expired"
    assert (await gate.ticket(key))["locked"] is False
    late = await gate.refused(
        "approvals", "approvals.decide", {"id": request["id"], "vote": "approve"}, by=ADMIN
    )
    assert late.status == 409 and late.code == "ALREADY_DECIDED"


async def test_the_requester_never_approves_their_own_gated_action_even_as_admin(
    gate: Gate,
) -> None:
    await gate.rule()
    key = await gate.deploy(by=ADMIN)
    request = await gate.approval_of(key)
    refused = await gate.refused(
        "approvals", "approvals.decide", {"id": request["id"], "vote": "approve"}, by=ADMIN
    )
    assert refused.status == 403 and refused.code == "NOT_AN_APPROVER"
    outsider = await gate.refused(
        "approvals", "approvals.decide", {"id": request["id"], "vote": "approve"}, by=BOB
    )
    assert outsider.status == 403 and outsider.code == "NOT_AN_APPROVER"
    assert (await gate.ticket(key))["locked"] is True


async def test_a_quorum_needs_that_many_different_approvers(gate: Gate) -> None:
    approval = {"approvers": {"users": [OPERATOR.id, ADMIN.id]}, "quorum": 2}
    await gate.rule(approval=approval)
    key = await gate.deploy()
    request = await gate.approval_of(key)
    first = await gate.vote(request["id"], "approve", by=OPERATOR)
    assert first["status"] == "pending"
    again = await gate.refused(
        "approvals", "approvals.decide", {"id": request["id"], "vote": "approve"}, by=OPERATOR
    )
    assert again.status == 409 and again.code == "ALREADY_DECIDED"
    assert (await gate.ticket(key))["locked"] is True
    second = await gate.vote(request["id"], "approve", by=ADMIN)
    assert second["status"] == "approved" and len(second["decisions"]) == 2
    assert (await gate.job(request["job_ids"][0]))["state"] == "succeeded"


async def test_of_two_votes_that_each_complete_the_quorum_exactly_one_wins(gate: Gate) -> None:
    await gate.rule()
    for _ in range(5):
        key = await gate.deploy()
        request = await gate.approval_of(key)
        body = {"id": request["id"], "vote": "approve"}
        outcomes = await asyncio.gather(
            gate.call("approvals", "approvals.decide", body, by=OPERATOR),
            gate.call("approvals", "approvals.decide", body, by=ADMIN),
            return_exceptions=True,
        )
        won = [o for o in outcomes if isinstance(o, dict)]
        lost = [o for o in outcomes if not isinstance(o, dict)]
        assert len(won) == 1 and len(lost) == 1
        assert getattr(lost[0], "code", None) == "ALREADY_DECIDED"
        final = await gate.call("approvals", "approvals.get", {"id": request["id"]}, by=ADMIN)
        assert len(final["decisions"]) == 1


async def test_a_requester_cannot_read_approval_requests(gate: Gate) -> None:
    refused = await gate.refused("approvals", "approvals.list", {}, by=ALICE)
    assert refused.status == 403
