"""Events of tickets and ticket types, written by the tickets service (and the lock, by approvals).

Streams: `tickettype-<key>` (a type's schema versions), `ticketkeys` (the n-th ticket key taken
is event n: the counter that makes OPS-1, OPS-2, ... gapless), `ticket-<key>` (one ticket).
`ticket.approval_requested` / `ticket.approval_decided` live in the ticket's own stream so that
the lock and every status change are ordered by the same expected-version check; the approvals
service writes them (tests write them directly today).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from libs.events.registry import DomainEvent, event, upcaster

TicketStatus = Literal["open", "in_progress", "waiting_for_requester", "resolved", "closed"]
TicketPriority = Literal["low", "medium", "high", "urgent"]
RelationKind = Literal["related", "blocks", "duplicate"]
Decision = Literal["approved", "rejected", "expired", "cancelled"]


@event("ticket_type.defined")
class TicketTypeDefined(DomainEvent):
    """First event of `tickettype-<key>`: schema version 1 (built-ins are seeded with this too)."""

    key: str
    name: str
    fields: list[dict[str, Any]]
    builtin: bool = False


@event("ticket_type.revised")
class TicketTypeRevised(DomainEvent):
    """A new schema version of a type; tickets created earlier keep the version they had."""

    key: str
    name: str
    version: int = Field(ge=2)
    fields: list[dict[str, Any]]


@event("ticket_key.taken")
class TicketKeyTaken(DomainEvent):
    """Event n of `ticketkeys`: ticket number n is taken (in the ticket's creating transaction).

    Written until ticket numbers came from a sequence (services/tickets/migrations/0002); kept
    so the streams that hold it still load. The number is in `ticket.created`."""

    number: int = Field(ge=1)
    key: str


@event("ticket.created")
class TicketCreated(DomainEvent):
    key: str
    number: int = Field(ge=1)
    type: str
    type_version: int = Field(ge=1)
    title: str
    description: str | None = None
    priority: TicketPriority
    requester_id: str
    fields: dict[str, Any]


@event("ticket.status_changed")
class TicketStatusChanged(DomainEvent):
    from_status: TicketStatus
    to_status: TicketStatus
    by: str


@event("ticket.change_refused")
class TicketChangeRefused(DomainEvent):
    """A status change refused while the ticket is locked; the attempt stays in the audit trail."""

    attempted: TicketStatus
    reason: Literal["PENDING_APPROVAL"]
    approval_id: str
    by: str
    via: Literal["change_status", "reopen", "bulk_close", "automation"]


@event("ticket.assigned")
class TicketAssigned(DomainEvent):
    assignee_id: str
    previous_assignee_id: str | None = None
    by: str


@event("ticket.priority_changed")
class TicketPriorityChanged(DomainEvent):
    priority: TicketPriority
    previous: TicketPriority
    by: str


@event("ticket.tagged")
class TicketTagged(DomainEvent):
    tag: str
    by: str


@event("ticket.untagged")
class TicketUntagged(DomainEvent):
    tag: str
    by: str


@event("ticket.commented")
class TicketCommented(DomainEvent):
    """`internal` comments are for staff only (libs/contracts/ticket_visibility.py decides)."""

    comment_id: str
    author_id: str
    body: str
    internal: bool


@event("ticket.related")
class TicketRelated(DomainEvent):
    relation: RelationKind
    target: str
    by: str


@event("ticket.rated")
class TicketRated(DomainEvent):
    score: int = Field(ge=1, le=5)
    comment: str | None = None
    by: str


@event("ticket.approval_requested")
class TicketApprovalRequested(DomainEvent):
    """A gated action waits for approval: the ticket is locked until it is decided."""

    approval_id: str
    action: str
    requested_by: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)


@event("ticket.approval_decided", version=2)
class TicketApprovalDecided(DomainEvent):
    """The end of a pending approval, whatever the outcome: it releases the lock. v2 names the
    gated rule whose request it decides (None for a lock no rule took), so that rule never fires
    on the decision of its own request (a gate on `approval.decided` would lock again forever)."""

    approval_id: str
    decision: Decision
    decided_by: str | None = None
    reason: str | None = None
    rule_id: str | None = None


@upcaster("ticket.approval_decided", from_version=1)
def _approval_decided_v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    return {**data, "rule_id": None}


TICKET_EVENTS: tuple[type[DomainEvent], ...] = (
    TicketCreated,
    TicketStatusChanged,
    TicketChangeRefused,
    TicketAssigned,
    TicketPriorityChanged,
    TicketTagged,
    TicketUntagged,
    TicketCommented,
    TicketRelated,
    TicketRated,
    TicketApprovalRequested,
    TicketApprovalDecided,
)
"""Every event a ticket's stream (`ticket-<key>`) may hold: what each read model of tickets
(the tickets service's, the rules service's) folds. A new ticket event is added here once."""
