"""Builders of the executor tests: jobs made the way the rules service makes them
(`decide_firing` on a stored trigger event), and their first events."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

from libs.contracts.rules import RuleBody
from libs.events.catalog.rules import JobQueued
from libs.events.envelope import Actor, ActorKind, Envelope, Metadata
from libs.events.registry import DomainEvent
from libs.rules.firing import RuleVersion
from services.rules.domain import decide_firing

USER = Actor(kind=ActorKind.USER, id="u-ada")
T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def trigger(ticket: str = "OPS-1", *, event_id: UUID | None = None) -> Envelope:
    """A stored `ticket.created` as the rules service receives it."""
    return Envelope(
        id=event_id or uuid4(),
        stream_id=f"ticket-{ticket}",
        version=1,
        type="ticket.created",
        schema_version=1,
        data={"key": ticket, "type": "incident", "title": "API is down", "priority": "medium"},
        metadata=Metadata(actor=USER),
        recorded_at=T0,
        position=1,
    )


def firing(
    actions: list[dict[str, Any]],
    *,
    ticket: str = "OPS-1",
    mode: str = "active",
    rule_id: str | None = None,
    approval: dict[str, Any] | None = None,
) -> list[DomainEvent]:
    """The first events of a job whose rule runs `actions` on `ticket`'s creation."""
    body = RuleBody.model_validate(
        {
            "name": "test rule",
            "mode": mode,
            "trigger": {"event": "ticket.created"},
            "actions": actions,
            "approval": approval,
        }
    )
    ticket_view = {"key": ticket, "title": "API is down", "status": "open", "tags": []}
    rule = RuleVersion(rule_id or f"r-{uuid4().hex[:8]}", 1, body)
    return decide_firing(rule, trigger(ticket), ticket_view)


def queued(events: list[DomainEvent]) -> JobQueued:
    first = events[0]
    if not isinstance(first, JobQueued):
        raise TypeError(f"a firing starts with job.queued, not {first!r}")
    return first
