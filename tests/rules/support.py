"""Builders for the rules tests: stored events as the rules service receives them, and rules."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

from libs.contracts.rules import RuleBody
from libs.events.envelope import Actor, ActorKind, Envelope, Metadata
from libs.rules.firing import RuleVersion
from services.rules.validation import validate_rule

USER = Actor(kind=ActorKind.USER, id="u-ada")
EXECUTOR = Actor.service("executor")

TICKET: dict[str, Any] = {
    "key": "OPS-7",
    "type": "deployment",
    "title": "Deploy checkout 1.2",
    "status": "in_progress",
    "priority": "high",
    "tags": ["prod"],
    "assignee_id": None,
    "requester_id": "u-bob",
    "fields": {"environment": "production", "service": "checkout"},
}


def envelope(
    type_: str,
    data: dict[str, Any],
    *,
    stream: str = "ticket-OPS-7",
    actor: Actor = USER,
    depth: int = 0,
    event_id: UUID | None = None,
) -> Envelope:
    """A stored event as a consumer receives it."""
    return Envelope(
        id=event_id or uuid4(),
        stream_id=stream,
        version=2,
        type=type_,
        schema_version=1,
        data=data,
        metadata=Metadata(actor=actor, causation_depth=depth),
        recorded_at=datetime(2026, 12, 1, 12, 0, tzinfo=UTC),
        position=10,
    )


def status_changed(frm: str, to: str, **kwargs: Any) -> Envelope:
    data = {"from_status": frm, "to_status": to, "by": "u-ada"}
    return envelope("ticket.status_changed", data, **kwargs)


def rule(**changes: Any) -> dict[str, Any]:
    """A valid rule definition (as JSON), with top-level keys replaced."""
    base: dict[str, Any] = {
        "name": "Tag prod deploys",
        "enabled": True,
        "mode": "active",
        "trigger": {"event": "ticket.created"},
        "conditions": {
            "all": [
                {"field": "type", "op": "eq", "value": "deployment"},
                {"field": "fields.environment", "op": "eq", "value": "production"},
            ]
        },
        "actions": [{"type": "add_tag", "params": {"tag": "prod"}}],
        "approval": None,
        "on_automation": False,
    }
    base.update(changes)
    return base


def version(rule_id: str = "r-1", number: int = 1, **changes: Any) -> RuleVersion:
    """A validated rule version."""
    body = RuleBody.model_validate(
        validate_rule(rule(**changes)).model_dump(by_alias=True, exclude={"enabled"})
    )
    return RuleVersion(rule_id, number, body)
