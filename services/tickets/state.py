"""A ticket's state as its events leave it: evolve(state, event) -> state, and fold."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from libs.contracts.tickets import PendingApproval, Rating, Relation, TicketOut
from libs.events.catalog.tickets import (
    TicketApprovalDecided,
    TicketApprovalRequested,
    TicketAssigned,
    TicketChangeRefused,
    TicketCreated,
    TicketPriority,
    TicketPriorityChanged,
    TicketRated,
    TicketRelated,
    TicketStatus,
    TicketStatusChanged,
    TicketTagged,
    TicketUntagged,
)
from libs.events.registry import DomainEvent


class TicketState(BaseModel):
    """A ticket as its events left it (also stored as the projection row's `state`)."""

    model_config = ConfigDict(frozen=True)

    key: str
    number: int
    type: str
    type_version: int
    title: str
    description: str | None
    status: TicketStatus = "open"
    priority: TicketPriority
    requester_id: str
    assignee_id: str | None = None
    fields: dict[str, Any]
    tags: tuple[str, ...] = ()
    relations: tuple[Relation, ...] = ()
    rating: Rating | None = None
    pending: tuple[PendingApproval, ...] = ()
    created_at: datetime
    updated_at: datetime
    version: int

    @property
    def locked(self) -> bool:
        return bool(self.pending)

    def out(self) -> TicketOut:
        """The ticket as the API shows it."""
        return TicketOut(
            **self.model_dump(exclude={"number", "pending"}),
            locked=self.locked,
            pending_approval=self.pending[0] if self.pending else None,
        )

    def view(self) -> dict[str, Any]:
        """The ticket as the API shows it, as JSON."""
        shown: dict[str, Any] = self.out().model_dump(mode="json")
        return shown


def evolve(
    state: TicketState | None, event: DomainEvent, *, version: int, at: datetime
) -> TicketState | None:
    """The ticket after `event` (stored as stream `version` at time `at`)."""
    if isinstance(event, TicketCreated):
        data = event.model_dump(exclude={"number"})
        return TicketState(
            number=event.number, created_at=at, updated_at=at, version=version, **data
        )
    if state is None:
        return None  # e.g. an approval for a ticket that was never created
    changes: dict[str, Any] = {"version": version, "updated_at": at}
    match event:
        case TicketStatusChanged():
            changes["status"] = event.to_status
        case TicketAssigned():
            changes["assignee_id"] = event.assignee_id
        case TicketPriorityChanged():
            changes["priority"] = event.priority
        case TicketTagged():
            changes["tags"] = (*state.tags, event.tag)
        case TicketUntagged():
            changes["tags"] = tuple(t for t in state.tags if t != event.tag)
        case TicketRelated():
            changes["relations"] = (
                *state.relations,
                Relation(relation=event.relation, key=event.target),
            )
        case TicketRated():
            changes["rating"] = Rating(score=event.score, comment=event.comment)
        case TicketApprovalRequested():
            rule = event.details.get("rule_id")
            pending = PendingApproval(
                approval_id=event.approval_id,
                action=event.action,
                requested_at=at,
                rule_id=rule if isinstance(rule, str) else None,
                since=at,
            )
            changes["pending"] = (*state.pending, pending)
        case TicketApprovalDecided():
            changes["pending"] = tuple(
                p for p in state.pending if p.approval_id != event.approval_id
            )
        case TicketChangeRefused():
            changes.pop("updated_at")  # a refused attempt changed nothing
    return state.model_copy(update=changes)


def fold(history: Iterable[tuple[DomainEvent, int, datetime]]) -> TicketState | None:
    """The ticket after every (event, version, recorded_at) of its stream, in order."""
    state: TicketState | None = None
    for item, version, at in history:
        state = evolve(state, item, version=version, at=at)
    return state
