"""May this caller see this ticket, this event, this comment: every read path of the tickets
service asks here, and here asks `libs.contracts.ticket_visibility` (as the gateway's stream does),
so the answers cannot drift apart."""

from __future__ import annotations

from collections.abc import Iterable

from libs.contracts.ticket_visibility import (
    Viewer,
    may_see,
    may_see_event,
    requester_scope,
    sees_internal,
)
from libs.contracts.tickets import CommentOut
from libs.events.envelope import Envelope
from services.tickets.refusals import not_found
from services.tickets.state import TicketState

__all__ = [
    "comments_seen",
    "events_seen",
    "requester_scope",
    "sees_internal",
    "sees_ticket",
    "visible",
]


def sees_ticket(requester_id: str | None, by: Viewer) -> bool:
    """Whether `by` may see the ticket requested by `requester_id` (None: there is no such
    ticket)."""
    return requester_id is not None and may_see(by, requester_id=requester_id)


def visible(state: TicketState | None, by: Viewer) -> TicketState:
    """The ticket when `by` may see it; one they may not (or none) is not found, not forbidden."""
    if state is None or not sees_ticket(state.requester_id, by):
        raise not_found("the ticket")
    return state


def events_seen(ticket: TicketState, history: Iterable[Envelope], by: Viewer) -> list[Envelope]:
    """The events of the ticket's trail that `by` may see, in order."""
    owner = ticket.requester_id
    return [e for e in history if may_see_event(by, requester_id=owner, data=e.data)]


def comments_seen(
    ticket: TicketState, comments: Iterable[CommentOut], by: Viewer
) -> list[CommentOut]:
    """The comments on the ticket that `by` may see, in order."""
    owner = ticket.requester_id
    return [c for c in comments if may_see(by, requester_id=owner, internal=c.internal)]
