"""The one visibility policy of tickets, as a table: who sees a ticket, an event, a comment."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from libs.contracts.ticket_visibility import may_see, may_see_event, requester_scope


@dataclass(frozen=True)
class Someone:
    user_id: str
    is_staff: bool


OWNER = Someone("u-alice", is_staff=False)
OTHER = Someone("u-bob", is_staff=False)
STAFF = Someone("u-oper", is_staff=True)
EVENTS: list[tuple[str, dict[str, Any]]] = [
    ("ticket.commented", {"body": "hi", "internal": False}),
    ("ticket.commented", {"body": "psst", "internal": True}),
    ("ticket.noted", {"internal": True}),  # any other event marked internal is for staff too
    ("ticket.priority_changed", {"priority": "high"}),
]


@pytest.mark.parametrize(("who", "sees"), [(OWNER, [0, 3]), (OTHER, []), (STAFF, [0, 1, 2, 3])])
def test_a_requester_sees_their_own_tickets_events_except_internal_ones(
    who: Someone, sees: list[int]
) -> None:
    shown = [
        i
        for i, (_, data) in enumerate(EVENTS)
        if may_see_event(who, requester_id=OWNER.user_id, data=data)
    ]
    assert shown == sees
    assert may_see(who, requester_id=OWNER.user_id) is (who is not OTHER)
    assert requester_scope(who) == (None if who.is_staff else who.user_id)


def test_a_ticket_without_a_known_requester_is_for_staff_only() -> None:
    assert not may_see(OWNER, requester_id=None)
    assert may_see(STAFF, requester_id=None)
