"""Status changes through the RPC: staff follow the transition table; requesters only reopen."""

from __future__ import annotations

from tests.tickets.support import ALICE, BOB, BOT, OPERATOR, Desk


async def test_staff_move_a_ticket_along_the_table_and_each_change_is_an_event(desk: Desk) -> None:
    key = (await desk.open())["key"]
    path = ["in_progress", "waiting_for_requester", "in_progress", "resolved", "closed", "open"]
    ticket = await desk.move(key, *path)
    assert (ticket["status"], ticket["version"]) == ("open", 7)
    assert await desk.event_types(key) == ["ticket.created"] + ["ticket.status_changed"] * 6


async def test_a_change_outside_the_table_is_an_invalid_transition(desk: Desk) -> None:
    key = (await desk.open())["key"]
    same = await desk.refused("tickets.change_status", {"key": key, "status": "open"}, by=OPERATOR)
    await desk.move(key, "closed")
    skip = await desk.refused(
        "tickets.change_status", {"key": key, "status": "resolved"}, by=OPERATOR
    )
    for error in (same, skip):
        assert (error.status, error.code) == (409, "INVALID_TRANSITION")
    assert skip.details["allowed"] == ["open"]


async def test_automation_changes_status_with_staff_rights(desk: Desk) -> None:
    key = (await desk.open())["key"]
    assert (await desk.move(key, "resolved", by=BOT))["status"] == "resolved"


async def test_a_requester_reopens_their_own_resolved_ticket(desk: Desk) -> None:
    key = (await desk.open())["key"]
    await desk.move(key, "resolved")
    assert (await desk.move(key, "open", by=ALICE))["status"] == "open"


async def test_a_requester_may_not_otherwise_change_status(desk: Desk) -> None:
    key = (await desk.open())["key"]
    resolve = await desk.refused(
        "tickets.change_status", {"key": key, "status": "resolved"}, by=ALICE
    )
    assert (resolve.status, resolve.code) == (403, "FORBIDDEN")
    await desk.move(key, "resolved")
    close = await desk.refused("tickets.change_status", {"key": key, "status": "closed"}, by=ALICE)
    assert close.status == 403
    other = await desk.refused("tickets.change_status", {"key": key, "status": "open"}, by=BOB)
    assert other.status == 404


async def test_an_unknown_status_or_ticket_is_refused_cleanly(desk: Desk) -> None:
    key = (await desk.open())["key"]
    bad = await desk.refused("tickets.change_status", {"key": key, "status": "done"}, by=OPERATOR)
    assert bad.status == 422
    gone = await desk.refused(
        "tickets.change_status", {"key": "OPS-999", "status": "closed"}, by=OPERATOR
    )
    assert (gone.status, gone.code) == (404, "NOT_FOUND")
