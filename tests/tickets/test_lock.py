"""The approval lock: no path changes a locked ticket's status, refusals are recorded, no window."""

from __future__ import annotations

import asyncio

from libs.events.catalog.tickets import TicketApprovalRequested
from libs.events.store import ANY
from libs.events.testing import eventually
from tests.tickets.support import ALICE, APPROVALS, BOT, OPERATOR, Desk


async def test_resolve_right_after_an_approval_is_requested_is_refused(desk: Desk) -> None:
    key = (await desk.open())["key"]
    await desk.request_approval(key)
    error = await desk.refused(
        "tickets.change_status", {"key": key, "status": "resolved"}, by=OPERATOR
    )
    assert (error.status, error.code) == (409, "PENDING_APPROVAL")
    assert error.details == {"approval_id": "apr-1", "action": "resolve"}
    ticket = await eventually(
        lambda: desk.call("tickets.get", {"key": key}, by=OPERATOR), until=lambda t: t["locked"]
    )
    assert ticket["status"] == "open"
    assert ticket["pending_approval"]["approval_id"] == "apr-1"
    assert ticket["pending_approval"]["action"] == "resolve"


async def test_the_refusal_is_recorded_in_the_audit_trail(desk: Desk) -> None:
    key = (await desk.open())["key"]
    await desk.request_approval(key)
    await desk.refused("tickets.change_status", {"key": key, "status": "closed"}, by=OPERATOR)
    trail = (await desk.call("tickets.events", {"key": key}, by=ALICE))["items"]
    assert [e["type"] for e in trail] == [
        "ticket.created",
        "ticket.approval_requested",
        "ticket.change_refused",
    ]
    refused = trail[-1]
    assert refused["actor"] == {"kind": "user", "id": OPERATOR.id}
    assert refused["data"] == {
        "attempted": "closed",
        "reason": "PENDING_APPROVAL",
        "approval_id": "apr-1",
        "by": OPERATOR.id,
        "via": "change_status",
    }


async def test_bulk_close_refuses_locked_tickets_one_by_one_and_closes_the_rest(
    desk: Desk,
) -> None:
    free, locked = (await desk.open())["key"], (await desk.open())["key"]
    await desk.request_approval(locked)
    result = await desk.call(
        "tickets.bulk", {"keys": [free, locked, "OPS-99"], "op": "close"}, by=OPERATOR
    )
    assert result["results"] == [
        {"key": free, "ok": True, "status": 200},
        {
            "key": locked,
            "ok": False,
            "status": 409,
            "error": {
                "code": "PENDING_APPROVAL",
                "message": "the ticket is locked: 'resolve' waits for approval",
            },
        },
        {
            "key": "OPS-99",
            "ok": False,
            "status": 404,
            "error": {"code": "NOT_FOUND", "message": "the ticket was not found"},
        },
    ]
    assert (await desk.call("tickets.get", {"key": free}, by=OPERATOR))["status"] == "closed"
    assert (await desk.event_types(locked))[-1] == "ticket.change_refused"


async def test_a_requester_cannot_reopen_a_locked_ticket(desk: Desk) -> None:
    key = (await desk.open())["key"]
    await desk.move(key, "resolved")
    await desk.request_approval(key)
    error = await desk.refused("tickets.change_status", {"key": key, "status": "open"}, by=ALICE)
    assert error.code == "PENDING_APPROVAL"
    trail = (await desk.call("tickets.events", {"key": key}, by=ALICE))["items"]
    assert trail[-1]["data"]["via"] == "reopen"


async def test_automation_cannot_change_a_locked_tickets_status(desk: Desk) -> None:
    key = (await desk.open())["key"]
    await desk.request_approval(key)
    error = await desk.refused("tickets.change_status", {"key": key, "status": "closed"}, by=BOT)
    assert error.code == "PENDING_APPROVAL"
    trail = (await desk.call("tickets.events", {"key": key}, by=OPERATOR))["items"]
    assert trail[-1]["actor"] == {"kind": "service", "id": "rules"}
    assert trail[-1]["data"]["via"] == "automation"


async def test_other_changes_are_still_allowed_while_locked(desk: Desk) -> None:
    key = (await desk.open())["key"]
    await desk.request_approval(key)
    ticket = await desk.call("tickets.set_priority", {"key": key, "priority": "high"}, by=OPERATOR)
    assert (ticket["priority"], ticket["locked"]) == ("high", True)


async def test_the_decision_releases_the_lock(desk: Desk) -> None:
    key = (await desk.open())["key"]
    await desk.request_approval(key)
    await desk.decide_approval(key)
    ticket = await desk.move(key, "resolved")
    assert (ticket["status"], ticket["locked"], ticket["pending_approval"]) == (
        "resolved",
        False,
        None,
    )


async def test_a_lock_racing_a_status_change_never_leaves_a_change_after_the_lock(
    desk: Desk,
) -> None:
    keys = [(await desk.open())["key"] for _ in range(40)]

    async def lock(key: str, delay: float) -> None:
        await asyncio.sleep(delay)  # spread over the resolve's round trip: both orders happen
        event = TicketApprovalRequested(approval_id="race", action="resolve")
        await desk.deps.store.append(
            f"ticket-{key}", [event], expected_version=ANY, metadata=APPROVALS
        )

    async def resolve(key: str) -> str:
        try:
            await desk.move(key, "resolved", by=BOT)
        except Exception as exc:
            return getattr(exc, "code", repr(exc))
        return "resolved"

    outcomes = []
    for i, key in enumerate(keys):
        _, outcome = await asyncio.gather(lock(key, (i % 20) * 0.0001), resolve(key))
        outcomes.append(outcome)
    assert set(outcomes) <= {"resolved", "PENDING_APPROVAL"}
    for key, outcome in zip(keys, outcomes, strict=True):
        types = [e.type for e in await desk.deps.store.read_stream(f"ticket-{key}")]
        locked_at = types.index("ticket.approval_requested")
        assert "ticket.status_changed" not in types[locked_at:], types
        assert ("ticket.status_changed" in types) == (outcome == "resolved")
