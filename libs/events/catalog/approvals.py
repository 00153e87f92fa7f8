"""Events written by the approvals service: one stream `approval-<id>` per gated firing.

`<id>` is `libs/rules/firing.approval_id(job id)`, so the lock the tickets service takes in the
append of the triggering event, the job the rules service queues and this request all name the
same approval without asking each other. The request is opened from whichever of
`ticket.approval_requested` and `job.queued` (gated) the approvals service sees first; the
other finds the stream there. A decision ends the request once (`approval.decided`, appended at
the stream's version: of two decisions that would each complete the quorum, one wins).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from libs.events.registry import DomainEvent, event

Vote = Literal["approve", "reject"]
Outcome = Literal["approved", "rejected", "expired"]
Via = Literal["api", "link"]


@event("approval.requested")
class ApprovalRequested(DomainEvent):
    """First event of `approval-<id>`: who may decide, how many must approve, until when."""

    approval_id: str
    job_ids: list[str]
    rule_id: str
    rule_version: int = Field(ge=1)
    ticket: str | None = None
    incident: str | None = None
    requester_id: str | None = None
    """The ticket's requester: never an approver of their own gated action."""
    users: list[str] = Field(default_factory=list)
    roles: list[str] = Field(default_factory=list)
    quorum: int = Field(ge=1)
    expires_at: datetime
    escalate_at: datetime | None = None
    announce: list[str] = Field(default_factory=list)
    """Webhook ids of chat endpoints the request is posted to, with signed links."""
    approvers: list[str] = Field(default_factory=list)
    """Who could vote when it opened (the named users and the active holders of its roles,
    never the requester): whom it is announced to, in-app and with a link each in chat. Who may
    vote is decided again at each vote."""
    summary: str = ""
    """What waits: the rule's name and its actions, as the approver sees them."""


@event("approval.vote_cast")
class ApprovalVoteCast(DomainEvent):
    """One approver's vote, with the reason they gave; a link's use is recorded by its id."""

    user_id: str
    vote: Vote
    reason: str | None = None
    via: Via = "api"
    link_id: str | None = None


@event("approval.decided")
class ApprovalDecided(DomainEvent):
    """The end of the request: approved (the quorum met), rejected (one approver said no) or
    expired (its durable timer fired first). Names its jobs so the executor needs no table."""

    outcome: Outcome
    job_ids: list[str]
    ticket: str | None = None
    by: str | None = None
    reason: str | None = None


@event("approval.expiry_due")
class ApprovalExpiryDue(DomainEvent):
    """Appended by the request's durable timer at `expires_at`: still pending, it expires."""


@event("approval.escalation_due")
class ApprovalEscalationDue(DomainEvent):
    """Appended by the request's durable timer at `escalate_at`."""


@event("approval.escalated")
class ApprovalEscalated(DomainEvent):
    """Unanswered past `escalate_after`: the on-call (until schedules exist: the approvers'
    roles, or the named approvers) is told again."""

    notified: list[str]


APPROVAL_EVENTS: tuple[type[DomainEvent], ...] = (
    ApprovalRequested,
    ApprovalVoteCast,
    ApprovalDecided,
    ApprovalExpiryDue,
    ApprovalEscalationDue,
    ApprovalEscalated,
)
