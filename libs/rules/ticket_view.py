"""The rules service's own view of a ticket, folded from `ticket.*` events (never read from the
tickets service's tables): `evolve(state, event)` -> the ticket right after the event, as the
JSON that conditions read (`triggers.ticket_view`) and that a job keeps as its context."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from libs.events.catalog.tickets import (
    TicketApprovalDecided,
    TicketApprovalRequested,
    TicketAssigned,
    TicketChangeRefused,
    TicketCreated,
    TicketPriorityChanged,
    TicketStatusChanged,
    TicketTagged,
    TicketUntagged,
)
from libs.events.registry import DomainEvent

Ticket = dict[str, Any]


def evolve(
    state: Ticket | None, event: DomainEvent, *, version: int, at: datetime
) -> Ticket | None:
    """The ticket after `event` (stream `version`, recorded at `at`); None before it exists."""
    if isinstance(event, TicketCreated):
        return {
            "key": event.key,
            "number": event.number,
            "type": event.type,
            "type_version": event.type_version,
            "title": event.title,
            "description": event.description,
            "status": "open",
            "priority": event.priority,
            "requester_id": event.requester_id,
            "assignee_id": None,
            "fields": dict(event.fields),
            "tags": [],
            "locked": False,
            "pending_approvals": [],
            "created_at": at.isoformat(),
            "updated_at": at.isoformat(),
            "version": version,
        }
    if state is None:
        return None  # e.g. an approval for a ticket that was never created
    new = {**state, "version": version, "updated_at": at.isoformat()}
    match event:
        case TicketStatusChanged():
            new["status"] = event.to_status
        case TicketAssigned():
            new["assignee_id"] = event.assignee_id
        case TicketPriorityChanged():
            new["priority"] = event.priority
        case TicketTagged():
            new["tags"] = [*(t for t in state["tags"] if t != event.tag), event.tag]
        case TicketUntagged():
            new["tags"] = [t for t in state["tags"] if t != event.tag]
        case TicketApprovalRequested():
            new["pending_approvals"] = [*state["pending_approvals"], event.approval_id]
        case TicketApprovalDecided():
            pending = [a for a in state["pending_approvals"] if a != event.approval_id]
            new["pending_approvals"] = pending
        case TicketChangeRefused():
            new["updated_at"] = state["updated_at"]  # a refused attempt changed nothing
    new["locked"] = bool(new["pending_approvals"])
    return new


def fold(history: Iterable[tuple[DomainEvent, int, datetime]]) -> Ticket | None:
    """The ticket after every (event, version, recorded_at) of its stream, in order."""
    state: Ticket | None = None
    for item, version, at in history:
        state = evolve(state, item, version=version, at=at)
    return state
